//! Wire formats (header, registered claims) and the verified result.
//!
//! The payload is decoded once and parsed once into borrowed fields, so the
//! hot path does not allocate the subject to look up its cutoff. Registered
//! claims have strict types: `iat`, `exp` and `nbf` are non-negative integers
//! that fit in `i64`, `ver` a non-negative integer that fits in `u64`. A claim
//! of the wrong type is [`Error::Malformed`]; an absent (or `null`) one is
//! [`Error::MissingClaim`]. Duplicate registered claims are malformed.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::Error;

/// The JOSE header fields the guard reads; others are ignored.
#[derive(Deserialize)]
pub(crate) struct WireHeader<'a> {
    #[serde(borrow)]
    pub(crate) alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) crit: Option<IgnoredAny>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl Audience<'_> {
    pub(crate) fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(all) => all.iter().any(|a| a == aud),
        }
    }
}

/// Registered claims, borrowed from the decoded payload. `V` is `u64` for
/// tokens issued by this library and [`IgnoredAny`] for foreign tokens, whose
/// `ver` (if any) means something else (e.g. `"2.0"` from some providers).
#[derive(Deserialize)]
pub(crate) struct WireClaims<'a, V> {
    #[serde(borrow)]
    pub(crate) sub: Option<Cow<'a, str>>,
    pub(crate) iat: Option<u64>,
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) ver: Option<V>,
    #[serde(borrow)]
    pub(crate) iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) aud: Option<Audience<'a>>,
}

/// A JWT split into its three segments, not yet trusted.
pub(crate) struct Segments<'t> {
    pub(crate) header: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
    /// `header.payload`: what the signature covers.
    pub(crate) signed: &'t str,
}

impl<'t> Segments<'t> {
    /// Exactly three dot-separated segments; header and payload non-empty.
    /// An empty signature is left to the algorithm check, so an unsecured
    /// `alg: none` token is reported as such.
    pub(crate) fn split(token: &'t str) -> Result<Self, Error> {
        let mut parts = token.splitn(4, '.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed("a JWT has exactly three segments"));
        };
        if header.is_empty() || payload.is_empty() {
            return Err(Error::Malformed("empty segment"));
        }
        Ok(Segments {
            header,
            payload,
            signature,
            signed: &token[..header.len() + 1 + payload.len()],
        })
    }
}

/// Decodes one base64url segment (no padding, RFC 7515 §2).
pub(crate) fn b64(segment: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::Malformed("segment is not base64url without padding"))
}

/// `true` when the bytes are UTF-8 JSON text whose top-level value is an
/// object. UTF-8 is checked over the whole text because serde_json does not
/// check the values it skips (unknown header fields and claims). Derived
/// `Deserialize` structs
/// also accept a JSON array (fields by position); RFC 7515 §4 and RFC 7519
/// §7.2 require objects, and accepting arrays would make the guard read
/// tokens that other verifiers reject.
fn is_object(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
        && bytes
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .is_some_and(|b| *b == b'{')
}

pub(crate) fn parse_header(bytes: &[u8]) -> Result<WireHeader<'_>, Error> {
    if !is_object(bytes) {
        return Err(Error::Malformed("header is not a valid JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|_| Error::Malformed("header is not a valid JSON object"))
}

pub(crate) fn parse_claims<'a, V: Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<WireClaims<'a, V>, Error> {
    if !is_object(bytes) {
        return Err(Error::Malformed(
            "claims are not a JSON object with correctly typed registered claims",
        ));
    }
    serde_json::from_slice(bytes).map_err(|_| {
        Error::Malformed("claims are not a JSON object with correctly typed registered claims")
    })
}

/// Converts a non-negative time claim to `i64` (values beyond `i64::MAX`
/// cannot be a real time and are malformed, not clamped).
pub(crate) fn time_claim(value: Option<u64>, name: &'static str) -> Result<i64, Error> {
    let v = value.ok_or(Error::MissingClaim(name))?;
    i64::try_from(v).map_err(|_| Error::Malformed("time claim out of range"))
}

/// Parses the caller's own claims `C` from the payload. `C = ()` means none,
/// and skips the second parse. The payload is already known to be a JSON
/// object with valid registered claims, so a failure here is about `C`
/// alone: [`Error::InvalidClaims`], not [`Error::Malformed`].
pub(crate) fn parse_extra<C: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<C, Error> {
    if std::any::TypeId::of::<C>() == std::any::TypeId::of::<()>() {
        // `()` deserializes from `null` only: this yields the unit value
        // without reading the payload again.
        return serde_json::from_slice(b"null").map_err(|_| Error::InvalidClaims);
    }
    // serde's message may quote claim values: it is dropped.
    serde_json::from_slice(bytes).map_err(|_| Error::InvalidClaims)
}

/// Claim names the library owns; custom claims may not use them.
pub(crate) const RESERVED: &[&str] = &["sub", "iat", "exp", "nbf", "ver", "iss", "aud", "jti"];

/// A token that passed every check: signature, registered claims, and the
/// subject's cutoffs. `C` holds the caller's own claims (`()` for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<C = ()> {
    pub(crate) sub: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) ver: Option<u64>,
    pub(crate) claims: C,
}

impl<C> Verified<C> {
    /// The subject (`sub`), e.g. the user id.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `iat`, Unix seconds.
    pub fn issued_at(&self) -> i64 {
        self.iat
    }

    /// `exp`, Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.exp
    }

    /// `iat` as a date-time.
    pub fn issued_at_utc(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp(self.iat, 0)
    }

    /// `exp` as a date-time.
    pub fn expires_at_utc(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp(self.exp, 0)
    }

    /// The token version `ver`; `None` for foreign tokens.
    pub fn version(&self) -> Option<u64> {
        self.ver
    }

    /// The caller's own claims.
    pub fn claims(&self) -> &C {
        &self.claims
    }

    /// Consumes the result, returning the caller's own claims.
    pub fn into_claims(self) -> C {
        self.claims
    }
}
