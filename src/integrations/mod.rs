//! Web framework integrations, and the framework-neutral pieces they share.
//!
//! Every integration reads `Authorization: Bearer <token>`, validates it with
//! the [`Guard`](crate::Guard), and either hands the handler a
//! [`Verified`](crate::Verified) or answers with a [`Rejection`]. The
//! responses follow RFC 6750 §3 and are identical across frameworks:
//!
//! | situation | status | `WWW-Authenticate` | body |
//! |---|---|---|---|
//! | no `Authorization` header | 401 | `Bearer` | `{"error":"missing_token"}` |
//! | header present but not `Bearer <b64token>` | 400 | `Bearer error="invalid_request", …` | `{"error":"invalid_request"}` |
//! | token rejected (malformed, expired, revoked, …) | 401 | `Bearer error="invalid_token", error_description="…"` | `{"error":"<Error::code()>"}` |
//! | cutoff store unavailable | 503 | — (`Retry-After: 1`) | `{"error":"store_unavailable"}` |
//! | server misconfiguration | 500 | — | `{"error":"<code>"}` |
//!
//! The token itself is never echoed.

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

    /// An `Authorization` header that is not `Bearer <b64token>`: 400.
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
    /// No `Authorization` header.
    Missing,
    /// `Bearer <token>`, with a syntactically valid b64token.
    Bearer(&'a str),
    /// Anything else: another scheme, an empty or malformed token, non-ASCII.
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
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Credentials::Invalid;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Invalid;
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

/// Marks a request the middleware has seen, so an extractor can tell "no
/// token (optional authentication)" from "the middleware is not installed".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked;

/// The 500 an extractor answers when its middleware is not installed: a
/// wiring mistake should be loud, not look like a bad token.
pub(crate) const MISSING_LAYER: &str = "jwt-revoke: the authentication middleware (RevokeLayer / RevokeMiddleware) is not installed on this route";

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
        for bad in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a\"b",
            b"Bearer \xff\xfe",
            b"Bearer =abc",
            b"Bearerabc",
        ] {
            assert_eq!(
                bearer_credentials(Some(bad)),
                Credentials::Invalid,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn descriptions_are_safe_inside_a_quoted_string() {
        assert_eq!(quoted_string_safe("a \"b\" \\ ü"), "a 'b' ' ?");
    }
}
