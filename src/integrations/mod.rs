//! Web framework integrations, and the framework-neutral pieces they share.
//!
//! Every integration reads the token (`Authorization: Bearer <token>` by
//! default, or a cookie or another header, or the first of several of
//! them present in the request: [`TokenSource`]), validates it
//! with the [`Guard`], checks the route's claims requirements
//! if any, and either hands the handler a [`Verified`] or answers with a
//! [`Rejection`]. The responses follow RFC 6750 §3 and are identical across
//! frameworks, and for [`Error`] returned from a handler (`IntoResponse` in
//! axum, `ResponseError` in actix):
//!
//! | situation | status | `WWW-Authenticate` | body |
//! |---|---|---|---|
//! | no token: no `Authorization` header, one for another scheme (`Basic …`), no such cookie or header (with several sources: none of them) | 401 | `Bearer` | `{"error":"missing_token"}` |
//! | a token that is empty or not a `b64token` | 400 | `Bearer error="invalid_request", …` | `{"error":"invalid_request"}` |
//! | token rejected (malformed, expired, revoked, claims not of the type `C`, …) | 401 | `Bearer error="invalid_token", error_description="…"` | `{"error":"<Error::code()>"}` |
//! | valid token failing a [`require`](tower::RevokeLayer::require) check | 403 | `Bearer error="insufficient_scope"` | `{"error":"insufficient_scope"}` |
//! | cutoff store unavailable | 503 | — (`Retry-After: 1`) | `{"error":"store_unavailable"}` |
//! | server misconfiguration | 500 | — | `{"error":"<code>"}` |
//!
//! Every rejection also carries `Content-Type: application/json` and
//! `Cache-Control: no-store`, and the [`Rejection`] itself in the response
//! extensions (for logging or counting in outer middleware). The token is
//! never echoed. An `on_reject` hook replaces the body and its
//! `Content-Type` ([`RejectionBody`]); the status and the other headers stay.
//! The hook covers the middleware's own answers and the library's answers
//! from the routes behind it (extractors, a handler's [`Error`]).
//!
//! Behind an `optional` middleware, requests without a token reach the
//! handler: an optional extractor sees "anonymous", a required one answers
//! the 401 `missing_token` above. An extractor that finds no middleware, or
//! a middleware that validated another claims type, answers a plain-text 500
//! saying so ([`ExtractError`]).
//!
//! # The claims type `C`
//!
//! The application's claims are deserialized once, by the middleware, into
//! the type the middleware names (`RevokeLayer::<_, MyClaims>`,
//! `RevokeMiddleware::<_, MyClaims>`): the middleware runs before any
//! handler, and nothing tells Rust which type the handlers will ask for, so
//! it cannot be inferred. A token whose claims do not deserialize into `C`
//! is a 401 `invalid_claims` ([`Error::InvalidClaims`]); give a newly added
//! field `#[serde(default)]` so that the tokens issued before it still pass.
//!
//! `C` must be `Clone`: the [`Verified<C>`] travels from the middleware to
//! the handler in the request extensions, which in `http` 1 accept only
//! `Clone` values, and extractors read it from there by reference (several
//! extractors or middleware may read the same request), so they clone it.
//! Claims ride in every token and are small; the clone is cheap.
//!
//! ```compile_fail,E0277
//! # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
//! use axum::{Router, routing::get};
//! use jwt_revoke::integrations::{axum::Authenticated, tower::RevokeLayer};
//!
//! #[derive(serde::Deserialize)] // no Clone: error[E0277]
//! struct MyClaims {
//!     role: String,
//! }
//!
//! async fn me(Authenticated(user): Authenticated<MyClaims>) -> String {
//!     user.claims().role.clone()
//! }
//! # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
//! # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route_layer(RevokeLayer::<_, MyClaims>::new(guard));
//! ```

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::claims::Verified;
use crate::error::Error;
use crate::guard::Guard;
use crate::store::CutoffStore;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;

mod validator;
pub use validator::Validator;

/// Why a request was refused, as an HTTP answer any framework can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code, also the `error` field of the body.
    pub code: &'static str,
    /// The `WWW-Authenticate` header value, when the status calls for one.
    pub www_authenticate: Option<String>,
    /// The `Retry-After` header value (seconds), for 503.
    pub retry_after: Option<u32>,
}

impl Rejection {
    /// No `Authorization` header: a 401 that only names the scheme
    /// (RFC 6750 §3.1: no error code when the request had no credentials).
    pub fn missing_token() -> Self {
        Rejection {
            status: 401,
            code: "missing_token",
            www_authenticate: Some("Bearer".to_owned()),
            retry_after: None,
        }
    }

    /// A `Bearer` header whose token is empty or not a `b64token`: 400.
    pub fn invalid_request() -> Self {
        Rejection {
            status: 400,
            code: "invalid_request",
            www_authenticate: Some(
                "Bearer error=\"invalid_request\", error_description=\"expected Authorization: Bearer <token>\""
                    .to_owned(),
            ),
            retry_after: None,
        }
    }

    /// A valid token whose claims fail a
    /// [`require`](tower::RevokeLayer::require) check: 403 with
    /// `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1).
    pub fn insufficient_scope() -> Self {
        Rejection {
            status: 403,
            code: "insufficient_scope",
            www_authenticate: Some("Bearer error=\"insufficient_scope\"".to_owned()),
            retry_after: None,
        }
    }

    /// The answer for a guard error.
    pub fn from_error(err: &Error) -> Self {
        match err.status() {
            401 => Rejection {
                status: 401,
                code: err.code(),
                www_authenticate: Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoted_string_safe(&err.to_string())
                )),
                retry_after: None,
            },
            503 => Rejection {
                status: 503,
                code: err.code(),
                www_authenticate: None,
                retry_after: Some(1),
            },
            status => Rejection {
                status,
                code: err.code(),
                www_authenticate: None,
                retry_after: None,
            },
        }
    }

    /// The response headers as lowercase (name, value) pairs: every
    /// framework sends exactly these, so the answers cannot drift apart.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            // A rejection depends on the credentials: never cache it.
            ("cache-control", "no-store".to_owned()),
        ];
        if let Some(www) = &self.www_authenticate {
            headers.push(("www-authenticate", www.clone()));
        }
        if let Some(secs) = self.retry_after {
            headers.push(("retry-after", secs.to_string()));
        }
        headers
    }

    /// The JSON body: `{"error":"<code>"}`.
    pub fn body(&self) -> String {
        // Codes are static snake_case identifiers: nothing to escape.
        format!("{{\"error\":\"{}\"}}", self.code)
    }
}

impl From<&Error> for Rejection {
    fn from(err: &Error) -> Self {
        Rejection::from_error(err)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request refused: {} ({})", self.code, self.status)
    }
}

impl std::error::Error for Rejection {}

/// Lets `?` turn an [`Error`] into a [`Rejection`] in a handler that
/// returns `Result<_, Rejection>`.
impl From<Error> for Rejection {
    fn from(err: Error) -> Self {
        Rejection::from_error(&err)
    }
}

impl Rejection {
    /// Headers and body of the answer, with the application's body when an
    /// [`on_reject`](tower::RevokeLayer::on_reject) hook is set: the hook
    /// replaces `Content-Type` and the body, never the status,
    /// `WWW-Authenticate`, `Retry-After` or `Cache-Control`.
    pub(crate) fn answer(
        &self,
        hook: Option<&RejectHook>,
    ) -> (Vec<(&'static str, String)>, String) {
        let mut headers = self.headers();
        match hook {
            None => (headers, self.body()),
            Some(hook) => {
                let custom = hook(self);
                for (name, value) in &mut headers {
                    if *name == "content-type" {
                        *value = custom.content_type.clone();
                    }
                }
                (headers, custom.body)
            }
        }
    }
}

/// Marks a response whose body is the library's default JSON: a layer with
/// an `on_reject` hook gives such responses from the routes behind it (an
/// extractor's 401, a handler's `?` on an [`Error`]) the application's body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DefaultBody;

/// The body an [`on_reject`](tower::RevokeLayer::on_reject) hook gives a
/// rejection: the status and the authentication headers stay the library's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionBody {
    /// The `Content-Type` header value (e.g. `application/problem+json`).
    /// A value that is not a valid header value is not sent.
    pub content_type: String,
    /// The response body.
    pub body: String,
}

impl RejectionBody {
    /// A body of the given content type.
    pub fn new(content_type: impl Into<String>, body: impl Into<String>) -> Self {
        RejectionBody {
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// An `application/json` body.
    pub fn json(body: impl Into<String>) -> Self {
        RejectionBody::new("application/json", body)
    }
}

/// An application's rejection hook, shared by every request.
pub(crate) type RejectHook = Arc<dyn Fn(&Rejection) -> RejectionBody + Send + Sync>;

/// A claims requirement of a layer or middleware.
type Requirement<C> = Arc<dyn Fn(&Verified<C>) -> bool + Send + Sync>;

/// Where the layer and the middleware look for the token.
///
/// Whatever the source, the answers are the same (the table in the
/// [module](self) docs): no token is "missing" (401 `missing_token`, or
/// anonymous behind an optional layer), a token that is present but empty or
/// not a `b64token` is a 400 `invalid_request`, and a token the guard
/// rejects is a 401 with its code.
///
/// # Several sources
///
/// A layer or middleware may read several sources in order
/// (`token_sources([TokenSource::Bearer, TokenSource::Cookie("session")])`,
/// e.g. API clients send a header, the browser app a cookie). The **first
/// source present in the request decides**, alone: a request with both a
/// bearer header and the cookie is judged on the header. A source is
/// present when the request carries it at all: an `Authorization: Bearer`
/// header (an `Authorization` header of another scheme, such as `Basic`, is
/// not a bearer token and counts as absent), the named cookie, the named
/// header. A present token that is empty or malformed (400) or that the
/// guard rejects (401: expired, revoked, …) is the answer; the later
/// sources are never tried. Falling back would let whoever can plant a
/// cookie in the browser (a sibling subdomain, an injected `Set-Cookie`)
/// override a header the server refused, and would make a revoked or
/// expired token look like no problem as long as another one rode along,
/// hiding the revocation from the client and the logs. Which source
/// decides depends only on what the request carries, never on the
/// validity of the tokens. See [`find_credentials`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1), the default.
    #[default]
    Bearer,
    /// The cookie of this name (`Cookie: session=<token>`), e.g. for a
    /// browser app that keeps the token in an `HttpOnly` cookie. The first
    /// cookie of that name counts; surrounding double quotes are removed.
    /// A cookie-authenticated route that changes state needs CSRF
    /// protection (e.g. `SameSite=Strict` or `Lax`) — that is the
    /// application's part.
    Cookie(&'static str),
    /// The whole value of this header (e.g. `X-Api-Token: <token>`), without
    /// a scheme. The header may appear once; twice is an invalid request.
    Header(&'static str),
}

impl TokenSource {
    /// `true` when the cookie or header name is a valid HTTP token (RFC 9110
    /// §5.6.2): another name could never match a request.
    pub(crate) fn is_valid(&self) -> bool {
        let token = |name: &str| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        match self {
            TokenSource::Bearer => true,
            TokenSource::Cookie(name) | TokenSource::Header(name) => token(name),
        }
    }

    /// The name of the header the token is read from.
    pub fn header_name(&self) -> &'static str {
        match self {
            TokenSource::Bearer => "authorization",
            TokenSource::Cookie(_) => "cookie",
            TokenSource::Header(name) => name,
        }
    }

    /// Finds the token among the values of [`TokenSource::header_name`]
    /// (every occurrence of the header, in order).
    pub fn credentials<'a>(&self, values: &[&'a [u8]]) -> Credentials<'a> {
        match self {
            TokenSource::Bearer => bearer_credentials(values.first().copied()),
            TokenSource::Header(_) => match values {
                [] => Credentials::Missing,
                [one] => token_credentials(one.trim_ascii()),
                _ => Credentials::Invalid,
            },
            TokenSource::Cookie(name) => values
                .iter()
                .flat_map(|v| v.split(|b| *b == b';'))
                .find_map(|pair| {
                    let pair = pair.trim_ascii();
                    let eq = pair.iter().position(|b| *b == b'=')?;
                    (pair[..eq].trim_ascii() == name.as_bytes()).then(|| {
                        let value = pair[eq + 1..].trim_ascii();
                        let value = value
                            .strip_prefix(b"\"")
                            .and_then(|v| v.strip_suffix(b"\""))
                            .unwrap_or(value);
                        token_credentials(value)
                    })
                })
                .unwrap_or(Credentials::Missing),
        }
    }
}

/// The credentials of a request from `sources` in order: the first source
/// present in the request decides (its [`Credentials::Bearer`] or
/// [`Credentials::Invalid`]); [`Credentials::Missing`] when none is
/// present. `values(name)` gives every value of the header `name`, in
/// order (`name` is a [`TokenSource::header_name`]).
///
/// A present but bad token is returned, never skipped for a later source
/// (see [`TokenSource`], "Several sources"): custom integrations should
/// keep that rule.
///
/// ```
/// use jwt_revoke::integrations::{Credentials, TokenSource, find_credentials};
///
/// let sources = [TokenSource::Bearer, TokenSource::Cookie("session")];
/// let request = |auth: Option<&'static str>, cookie: Option<&'static str>| {
///     move |name: &str| -> Vec<&'static [u8]> {
///         match name {
///             "authorization" => auth.map(str::as_bytes).into_iter().collect(),
///             "cookie" => cookie.map(str::as_bytes).into_iter().collect(),
///             _ => Vec::new(),
///         }
///     }
/// };
/// // Both present: the header decides.
/// assert_eq!(
///     find_credentials(&sources, request(Some("Bearer h.e.ader"), Some("session=c.ook.ie"))),
///     Credentials::Bearer("h.e.ader")
/// );
/// // An empty bearer token is present and bad: the cookie is not tried.
/// assert_eq!(
///     find_credentials(&sources, request(Some("Bearer "), Some("session=c.ook.ie"))),
///     Credentials::Invalid
/// );
/// // Another scheme is no bearer token: the cookie decides.
/// assert_eq!(
///     find_credentials(&sources, request(Some("Basic YWxpY2U6cHc="), Some("session=c.ook.ie"))),
///     Credentials::Bearer("c.ook.ie")
/// );
/// assert_eq!(find_credentials(&sources, request(None, None)), Credentials::Missing);
/// ```
pub fn find_credentials<'a>(
    sources: &[TokenSource],
    mut values: impl FnMut(&'static str) -> Vec<&'a [u8]>,
) -> Credentials<'a> {
    for source in sources {
        match source.credentials(&values(source.header_name())) {
            Credentials::Missing => {}
            present => return present,
        }
    }
    Credentials::Missing
}

/// [`Credentials`] with the token copied out of the request, for a future
/// that must not borrow the request (its body need not be `Sync`).
#[cfg(feature = "tower")]
pub(crate) enum OwnedCredentials {
    Missing,
    Invalid,
    Bearer(String),
}

#[cfg(feature = "tower")]
impl OwnedCredentials {
    pub(crate) fn new(credentials: Credentials<'_>) -> Self {
        match credentials {
            Credentials::Missing => OwnedCredentials::Missing,
            Credentials::Invalid => OwnedCredentials::Invalid,
            Credentials::Bearer(token) => OwnedCredentials::Bearer(token.to_owned()),
        }
    }

    pub(crate) fn get(&self) -> Credentials<'_> {
        match self {
            OwnedCredentials::Missing => Credentials::Missing,
            OwnedCredentials::Invalid => Credentials::Invalid,
            OwnedCredentials::Bearer(token) => Credentials::Bearer(token),
        }
    }
}

/// A token that must be a `b64token` (RFC 6750 §2.1).
fn token_credentials(raw: &[u8]) -> Credentials<'_> {
    match std::str::from_utf8(raw) {
        Ok(token) if is_b64token(token) => Credentials::Bearer(token),
        _ => Credentials::Invalid,
    }
}

fn is_b64token(token: &str) -> bool {
    !token.is_empty()
        && !token.starts_with('=')
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Everything a layer or middleware decides with: the guard, the token
/// source, anonymous access, claims requirements and the rejection hook.
/// Shared by the tower layer, the actix middleware and the axum extractor,
/// so they cannot answer differently.
pub(crate) struct Policy<S: CutoffStore, C> {
    pub(crate) guard: Guard<S>,
    pub(crate) optional: bool,
    /// Never empty ([`Policy::set_sources`]).
    pub(crate) sources: Vec<TokenSource>,
    pub(crate) requirements: Vec<Requirement<C>>,
    pub(crate) on_reject: Option<RejectHook>,
}

impl<S: CutoffStore, C> Clone for Policy<S, C> {
    fn clone(&self) -> Self {
        Policy {
            guard: self.guard.clone(),
            optional: self.optional,
            sources: self.sources.clone(),
            requirements: self.requirements.clone(),
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<S: CutoffStore, C> std::fmt::Debug for Policy<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("optional", &self.optional)
            .field("sources", &self.sources)
            .field("requirements", &self.requirements.len())
            .field("on_reject", &self.on_reject.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: CutoffStore, C> Policy<S, C> {
    pub(crate) fn new(guard: Guard<S>) -> Self {
        Policy {
            guard,
            optional: false,
            sources: vec![TokenSource::Bearer],
            requirements: Vec::new(),
            on_reject: None,
        }
    }

    /// Sets where the token is read, in order, refusing a list that could
    /// never find one: empty, or with a cookie or header name that is not
    /// an HTTP token (a list with such a source would quietly fall through
    /// to the next one on every request).
    pub(crate) fn set_sources(&mut self, sources: impl IntoIterator<Item = TokenSource>) {
        let sources: Vec<TokenSource> = sources.into_iter().collect();
        assert!(
            !sources.is_empty(),
            "jwt-revoke: no token source: give at least one"
        );
        for source in &sources {
            assert!(
                source.is_valid(),
                "jwt-revoke: invalid token source {source:?}"
            );
        }
        self.sources = sources;
    }
}

impl<S: CutoffStore, C: DeserializeOwned + 'static> Policy<S, C> {
    /// Validates a token and checks the requirements.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified<C>, Rejection> {
        let verified = self.guard.validate::<C>(token).await?;
        if self.requirements.iter().all(|check| check(&verified)) {
            Ok(verified)
        } else {
            Err(Rejection::insufficient_scope())
        }
    }

    /// The layer's decision: `Ok(None)` is an anonymous request that an
    /// optional layer lets through. A layer with requirements lets no
    /// anonymous request through: none can meet them.
    pub(crate) async fn decide(
        &self,
        credentials: Credentials<'_>,
    ) -> Result<Option<Verified<C>>, Rejection> {
        match credentials {
            Credentials::Missing if self.optional && self.requirements.is_empty() => Ok(None),
            Credentials::Missing => Err(Rejection::missing_token()),
            Credentials::Invalid => Err(Rejection::invalid_request()),
            Credentials::Bearer(token) => self.verify(token).await.map(Some),
        }
    }
}

/// RFC 6750 `error_description` allows printable ASCII except `"` and `\`.
fn quoted_string_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// What the `Authorization` header (or another [`TokenSource`]) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No bearer credentials: no `Authorization` header, or one for another
    /// scheme (e.g. `Basic`), or no such cookie or header. RFC 6750 §3.1
    /// answers both without an error code, and an optional layer lets both
    /// through as anonymous. Among several sources, the only answer that
    /// moves on to the next one ([`find_credentials`]).
    Missing,
    /// `Bearer <token>` (or the token from another [`TokenSource`]), with a
    /// syntactically valid b64token.
    Bearer(&'a str),
    /// A `Bearer` header (or another [`TokenSource`]) with an empty or
    /// malformed token, or a value that is not UTF-8.
    Invalid,
}

/// Parses an `Authorization` header value (RFC 6750 §2.1): the scheme is
/// case-insensitive, then one or more spaces, then a `b64token`.
pub fn bearer_credentials(header: Option<&[u8]>) -> Credentials<'_> {
    let Some(raw) = header else {
        return Credentials::Missing;
    };
    let Ok(value) = std::str::from_utf8(raw) else {
        return Credentials::Invalid;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Missing;
    }
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) {
        Credentials::Bearer(token)
    } else {
        Credentials::Invalid
    }
}

/// What the middleware leaves in the request extensions for the extractors,
/// beside the [`Verified`] itself: it lets an extractor tell
/// "no token (optional authentication)" from "the middleware is not
/// installed" and from "the middleware checked other claims than asked for".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// An optional middleware let a request without credentials through.
    Anonymous,
    /// The token was valid; a `Verified<C>` of the middleware's `C` is there.
    Authenticated,
}

/// Why an extractor could not hand the handler a verified token.
///
/// The middleware answers every bad token itself, so what is left here is
/// either a request without credentials reaching a handler that requires
/// them (behind an `optional` middleware: the same 401 the required
/// middleware would give), or a wiring mistake (a 500 whose body says what
/// to fix, rather than a misleading 401 or a silent "anonymous").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// No credentials, behind an optional middleware: 401, like
    /// [`Rejection::missing_token`].
    MissingToken,
    /// The middleware is not installed on this route: 500.
    MissingMiddleware,
    /// The middleware validated the token into other claims than the
    /// extractor's `C` (e.g. `RevokeLayer<_, ()>` with
    /// `Authenticated<MyClaims>`): 500.
    ClaimsTypeMismatch,
}

impl ExtractError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            ExtractError::MissingToken => 401,
            ExtractError::MissingMiddleware | ExtractError::ClaimsTypeMismatch => 500,
        }
    }

    /// The RFC 6750 answer, for the one case that is the client's to fix.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            ExtractError::MissingToken => Some(Rejection::missing_token()),
            ExtractError::MissingMiddleware | ExtractError::ClaimsTypeMismatch => None,
        }
    }
}

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExtractError::MissingToken => "no bearer token",
            ExtractError::MissingMiddleware => {
                "jwt-revoke: the authentication middleware (RevokeLayer / RevokeMiddleware) is not installed on this route"
            }
            ExtractError::ClaimsTypeMismatch => {
                "jwt-revoke: the authentication middleware validated the token into another claims type than this extractor asks for: use the same C in RevokeLayer<_, C> / RevokeMiddleware<_, C> and Authenticated<C>"
            }
        })
    }
}

impl std::error::Error for ExtractError {}

/// The extractors' one decision, from what the middleware left in the
/// request extensions: `Ok(None)` means "anonymous, and that was allowed".
#[cfg_attr(not(any(feature = "axum", feature = "actix")), allow(dead_code))]
pub(crate) fn extract<C: Clone>(
    verified: Option<&Verified<C>>,
    checked: Option<&Checked>,
) -> Result<Option<Verified<C>>, ExtractError> {
    match (verified, checked) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(Checked::Anonymous)) => Ok(None),
        (None, Some(Checked::Authenticated)) => Err(ExtractError::ClaimsTypeMismatch),
        (None, None) => Err(ExtractError::MissingMiddleware),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_headers_strictly() {
        assert_eq!(bearer_credentials(None), Credentials::Missing);
        assert_eq!(
            bearer_credentials(Some(b"Bearer abc.def-_~+/=")),
            Credentials::Bearer("abc.def-_~+/=")
        );
        assert_eq!(
            bearer_credentials(Some(b"bearer   a.b.c")),
            Credentials::Bearer("a.b.c")
        );
        for other_scheme in [&b"Basic dXNlcjpwYXNz"[..], b"Negotiate", b"Bearerabc"] {
            assert_eq!(
                bearer_credentials(Some(other_scheme)),
                Credentials::Missing,
                "{other_scheme:?}"
            );
        }
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a\"b",
            b"Bearer \xff\xfe",
            b"Bearer =abc",
        ] {
            assert_eq!(
                bearer_credentials(Some(bad)),
                Credentials::Invalid,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extractors_tell_anonymous_from_wiring_mistakes() {
        let v = Verified::<()> {
            sub: "alice".into(),
            iat: 0,
            exp: 1,
            ver: Some(0),
            sid: None,
            claims: (),
        };
        let ok = extract(Some(&v), Some(&Checked::Authenticated));
        assert_eq!(
            ok.map(|v| v.map(|v| v.sub().to_owned())),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            extract::<()>(None, Some(&Checked::Anonymous)).map(|v| v.is_none()),
            Ok(true)
        );
        assert_eq!(
            extract::<()>(None, Some(&Checked::Authenticated)).err(),
            Some(ExtractError::ClaimsTypeMismatch)
        );
        assert_eq!(
            extract::<()>(None, None).err(),
            Some(ExtractError::MissingMiddleware)
        );
        assert_eq!(
            ExtractError::MissingToken.rejection(),
            Some(Rejection::missing_token())
        );
        assert_eq!(ExtractError::ClaimsTypeMismatch.status(), 500);
    }

    #[test]
    fn rejection_headers_are_the_same_for_every_framework() {
        let names = |r: Rejection| r.headers().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(Rejection::missing_token()),
            ["content-type", "cache-control", "www-authenticate"]
        );
        let down = Rejection::from_error(&Error::StoreUnavailable(crate::StoreError::msg("x")));
        assert_eq!(
            down.headers().last(),
            Some(&("retry-after", "1".to_owned()))
        );
        assert_eq!(
            names(down),
            ["content-type", "cache-control", "retry-after"]
        );
    }

    #[test]
    fn descriptions_are_safe_inside_a_quoted_string() {
        assert_eq!(quoted_string_safe("a \"b\" \\ ü"), "a 'b' ' ?");
    }
}
