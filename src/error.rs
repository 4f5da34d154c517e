//! The one error type of the crate, with a stable machine-readable code.

use crate::cutoff::RevokedReason;
use crate::store::StoreError;

/// Every [`Error::code`], indexed by `Error::code_index` (counters per code
/// are kept in this order).
pub(crate) const CODES: [&str; 25] = [
    "malformed",
    "too_large",
    "invalid_signature",
    "algorithm_not_allowed",
    "unknown_key",
    "unsupported_critical_header",
    "expired",
    "not_yet_valid",
    "issued_in_future",
    "missing_claim",
    "invalid_issuer",
    "invalid_audience",
    "unknown_subject",
    "token_revoked",
    "store_unavailable",
    "issue_failed",
    "invalid_config",
    "invalid_cutoff",
    "retry_later",
    "invalid_claims",
    "session_revoked",
    "refresh_reused",
    "refresh_invalid",
    "sessions_disabled",
    "claims_unavailable",
];

/// Everything that can go wrong when issuing, validating or revoking tokens.
///
/// Match on the variant, or use [`Error::code`] (a stable string for logs,
/// metrics and JSON bodies) and [`Error::status`] (the HTTP status a server
/// should answer). A rejected token is a client error (401); an unavailable
/// cutoff store is a server error (503): the token might be fine.
///
/// Messages never contain the token, a key, or claim values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is not a well-formed JWT, or a claim has the wrong type
    /// (e.g. `"ver": "7"`, a negative or fractional `iat`, an overflowing `exp`).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token is longer than the configured limit; it was not parsed.
    #[error("token of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Length of the token in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The signature does not match the header and payload.
    #[error("invalid signature")]
    InvalidSignature,
    /// The header's `alg` is `none`, unknown, or not the algorithm of the
    /// selected key.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header's `kid` names no configured key, or there is no `kid` and
    /// several keys could apply.
    #[error("no key for this token")]
    UnknownKey,
    /// The header lists `crit` extensions, which this library does not
    /// understand and therefore must reject (RFC 7515 §4.1.11).
    #[error("unsupported critical header")]
    UnsupportedCriticalHeader,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future beyond the leeway: such a token would escape
    /// every timestamp cutoff.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// A required claim is absent (or `null`).
    #[error("missing claim `{0}`")]
    MissingClaim(&'static str),
    /// `iss` does not match the configured issuer.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// `aud` does not contain the configured audience.
    #[error("invalid audience")]
    InvalidAudience,
    /// The store has no cutoff for the token's `sub` (deleted or unknown user).
    #[error("unknown subject")]
    UnknownSubject,
    /// The token is revoked by a cutoff.
    #[error("token revoked ({0})")]
    Revoked(RevokedReason),
    /// The cutoff store failed and no usable cached cutoff exists. The guard
    /// fails closed: the token is not accepted.
    #[error("cutoff store unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// Signing a token failed, or the guard cannot sign (no signing key).
    #[error("cannot issue token: {0}")]
    Issue(String),
    /// The guard or key configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A revocation or event names a cutoff the guard refuses to apply: a
    /// `not_before` further in the future than
    /// [`GuardBuilder::max_future_cutoff`](crate::GuardBuilder::max_future_cutoff)
    /// (e.g. milliseconds passed where seconds are expected). Nothing was
    /// written.
    #[error("invalid cutoff: {0}")]
    InvalidCutoff(&'static str),
    /// No token can be issued before the next second: a
    /// [`Guard::revoke_all_before`](crate::Guard::revoke_all_before) for the
    /// current second is in force, and a token stamped with the next second
    /// could outlive a second such call within this one. Retry after a
    /// second (HTTP 503 with `Retry-After: 1`).
    #[error("cannot issue a token before the next second")]
    RetryLater,
    /// The token is genuine (signature, registered claims and cutoffs are
    /// fine) but the application's own claims `C` do not deserialize from
    /// it: a claim `C` requires is absent or has another type, typically a
    /// token issued before a field was added to `C`. HTTP 401.
    ///
    /// To roll out a new claim without rejecting every token issued before
    /// it, mark the field `#[serde(default)]` (or make it an `Option`) until
    /// the oldest token without it has expired:
    ///
    /// ```
    /// #[derive(Clone, serde::Deserialize)]
    /// struct Claims {
    ///     role: String,
    ///     // Added later: old tokens have no `tenant` and read as "".
    ///     #[serde(default)]
    ///     tenant: String,
    /// }
    /// ```
    ///
    /// The message never contains claim values (serde's would).
    #[error("the token's claims do not match the expected type")]
    InvalidClaims,
    /// The token's session (`sid`) was revoked (logged out, revoked by id,
    /// ended by a refresh-token reuse), expired and purged, or belongs to
    /// another subject; also answered by [`Guard::refresh`](crate::Guard::refresh)
    /// for a refresh token of such a session or of a subject whose cutoffs
    /// revoked the session (logged out everywhere, password changed).
    /// HTTP 401.
    #[error("session revoked")]
    SessionRevoked,
    /// A refresh token of a generation that was already spent was presented
    /// again: a copy of it is in someone else's hands. The whole session is
    /// revoked (its refresh token and its access tokens); the subject's
    /// other sessions are not touched. HTTP 401.
    #[error("refresh token reused; the session is revoked")]
    RefreshReused,
    /// The refresh token is not one this guard issued: garbage, tampered
    /// with, signed with another key, an access token, or for a session the
    /// store does not hold (expired and purged, or never created). HTTP 401.
    #[error("invalid refresh token")]
    RefreshInvalid,
    /// The token carries a session id (`sid`), but this guard was built
    /// without [`GuardBuilder::sessions`](crate::GuardBuilder::sessions), so
    /// it cannot check the session: a configuration mistake on this
    /// instance, answered as a loud 500 rather than accepting a token whose
    /// session may be revoked. (In foreign-token mode, `sid` is ignored
    /// without sessions.) Code `sessions_disabled`, HTTP 500.
    #[error("token has a session id but sessions are not enabled on this guard")]
    SessionsDisabled,
    /// A session call ([`Guard::login`](crate::Guard::login),
    /// [`Guard::refresh`](crate::Guard::refresh),
    /// [`Guard::revoke_session`](crate::Guard::revoke_session),
    /// [`Guard::revoke_sessions`](crate::Guard::revoke_sessions),
    /// [`Guard::sessions`](crate::Guard::sessions),
    /// [`Guard::purge_sessions`](crate::Guard::purge_sessions), …) on a
    /// guard built without
    /// [`GuardBuilder::sessions`](crate::GuardBuilder::sessions): enable
    /// them with `.sessions(SessionConfig::new(refresh_key))`.
    ///
    /// The same misconfiguration as [`Error::SessionsDisabled`], seen from
    /// a call rather than from a token, so it has the same code
    /// (`sessions_disabled`) and status (500); the variant and the message
    /// tell the two apart.
    #[error(
        "sessions are not enabled on this guard: build it with GuardBuilder::sessions(SessionConfig::new(..))"
    )]
    SessionsNotConfigured,
    /// The application could not compute the claims of a refreshed access
    /// token: the closure given to
    /// [`Guard::refresh_with`](crate::Guard::refresh_with) failed (its
    /// error is the [`source`](std::error::Error::source)). The refresh was
    /// aborted before the rotation: the refresh token was not spent, and
    /// the client may retry with it. HTTP 503 with `Retry-After: 1`, like
    /// an unavailable store.
    ///
    /// The message never contains the application's error (it may name
    /// the user); log the source on the server if needed.
    #[error("the application could not compute the token's claims")]
    ClaimsUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A stable snake_case code, safe to show to clients: one per variant,
    /// except that [`Error::SessionsNotConfigured`] shares
    /// `sessions_disabled` with [`Error::SessionsDisabled`] (one
    /// misconfiguration, met from a call or from a token).
    pub fn code(&self) -> &'static str {
        CODES[self.code_index()]
    }

    /// The position of [`Error::code`] in [`CODES`].
    pub(crate) fn code_index(&self) -> usize {
        match self {
            Error::Malformed(_) => 0,
            Error::TooLarge { .. } => 1,
            Error::InvalidSignature => 2,
            Error::AlgorithmNotAllowed => 3,
            Error::UnknownKey => 4,
            Error::UnsupportedCriticalHeader => 5,
            Error::Expired => 6,
            Error::NotYetValid => 7,
            Error::IssuedInFuture => 8,
            Error::MissingClaim(_) => 9,
            Error::InvalidIssuer => 10,
            Error::InvalidAudience => 11,
            Error::UnknownSubject => 12,
            Error::Revoked(_) => 13,
            Error::StoreUnavailable(_) => 14,
            Error::Issue(_) => 15,
            Error::Config(_) => 16,
            Error::InvalidCutoff(_) => 17,
            Error::RetryLater => 18,
            Error::InvalidClaims => 19,
            Error::SessionRevoked => 20,
            Error::RefreshReused => 21,
            Error::RefreshInvalid => 22,
            Error::SessionsDisabled | Error::SessionsNotConfigured => 23,
            Error::ClaimsUnavailable(_) => 24,
        }
    }

    /// `true` when the token itself is at fault (answer 401); `false` for
    /// failures of the server side (store down, configuration, signing).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::StoreUnavailable(_)
                | Error::Issue(_)
                | Error::Config(_)
                | Error::InvalidCutoff(_)
                | Error::RetryLater
                | Error::SessionsDisabled
                | Error::SessionsNotConfigured
                | Error::ClaimsUnavailable(_)
        )
    }

    /// The HTTP status code a server should answer: 401 for a bad token,
    /// 503 when the store (or the application's claims) is unavailable or
    /// a login must wait for the next second, 500 for the server's own
    /// mistakes.
    pub fn status(&self) -> u16 {
        match self {
            Error::StoreUnavailable(_) | Error::RetryLater | Error::ClaimsUnavailable(_) => 503,
            Error::Issue(_)
            | Error::Config(_)
            | Error::InvalidCutoff(_)
            | Error::SessionsDisabled
            | Error::SessionsNotConfigured => 500,
            _ => 401,
        }
    }

    /// The revocation reason, when the token was revoked.
    pub fn revoked_reason(&self) -> Option<RevokedReason> {
        match self {
            Error::Revoked(r) => Some(*r),
            Error::SessionRevoked => Some(RevokedReason::Session),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failure_is_503_not_401() {
        let e = Error::StoreUnavailable(StoreError::msg("down"));
        assert_eq!(e.status(), 503);
        assert!(!e.is_client_error());
        assert_eq!(e.code(), "store_unavailable");
        assert_eq!(Error::Revoked(RevokedReason::Version).status(), 401);
    }

    #[test]
    fn invalid_claims_is_a_401_with_its_own_code() {
        let e = Error::InvalidClaims;
        assert_eq!((e.code(), e.status()), ("invalid_claims", 401));
        assert!(e.is_client_error());
    }

    #[test]
    fn session_errors_have_stable_codes_and_statuses() {
        let cases = [
            (Error::SessionRevoked, "session_revoked", 401),
            (Error::RefreshReused, "refresh_reused", 401),
            (Error::RefreshInvalid, "refresh_invalid", 401),
            (Error::SessionsDisabled, "sessions_disabled", 500),
            (Error::SessionsNotConfigured, "sessions_disabled", 500),
            (
                Error::ClaimsUnavailable("users table down".into()),
                "claims_unavailable",
                503,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.status()), (code, status));
            assert_eq!(e.is_client_error(), status == 401);
        }
        assert_eq!(
            Error::SessionRevoked.revoked_reason(),
            Some(RevokedReason::Session)
        );
        assert_eq!(
            Error::ClaimsUnavailable("x".into()).code_index(),
            CODES.len() - 1
        );
    }
}
