//! Web framework integrations, and the framework-neutral pieces they share.
//!
//! Every integration reads `Authorization: Bearer <token>`, validates it with
//! the [`Guard`](crate::Guard), and either hands the handler a
//! [`Verified`] or answers with a [`Rejection`]. The
//! responses follow RFC 6750 §3 and are identical across frameworks:
//!
//! | situation | status | `WWW-Authenticate` | body |
//! |---|---|---|---|
//! | no `Authorization` header, or one for another scheme (`Basic …`) | 401 | `Bearer` | `{"error":"missing_token"}` |
//! | `Bearer` with an empty or malformed token | 400 | `Bearer error="invalid_request", …` | `{"error":"invalid_request"}` |
//! | token rejected (malformed, expired, revoked, …) | 401 | `Bearer error="invalid_token", error_description="…"` | `{"error":"<Error::code()>"}` |
//! | cutoff store unavailable | 503 | — (`Retry-After: 1`) | `{"error":"store_unavailable"}` |
//! | server misconfiguration | 500 | — | `{"error":"<code>"}` |
//!
//! Every rejection also carries `Content-Type: application/json` and
//! `Cache-Control: no-store`. The token itself is never echoed.
//!
//! Behind an `optional` middleware, requests without bearer credentials
//! reach the handler: an optional extractor sees "anonymous", a
//! required one answers the 401 `missing_token` above. An extractor that
//! finds no middleware, or a middleware that validated another claims type,
//! answers a plain-text 500 saying so ([`ExtractError`]).

use crate::claims::Verified;
use crate::error::Error;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;

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

/// What the `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No bearer credentials: no `Authorization` header, or one for another
    /// scheme (e.g. `Basic`). RFC 6750 §3.1 answers both without an error
    /// code, and an optional layer lets both through as anonymous.
    Missing,
    /// `Bearer <token>`, with a syntactically valid b64token.
    Bearer(&'a str),
    /// A `Bearer` header with an empty or malformed token, or a header that
    /// is not UTF-8.
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
    let b64token = !token.is_empty()
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        && !token.starts_with('=');
    if b64token {
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
