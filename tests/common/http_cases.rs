//! Requests every web integration must answer the same way, with the
//! status, error code and `WWW-Authenticate` a client would see.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(any(feature = "tower", feature = "actix"))]
use jwt_revoke::integrations::TokenSource;
use jwt_revoke::{
    Algorithm, Cutoff, FakeClock, Guard, Keys, MemoryStore, RefreshKey, SessionConfig,
};

use super::counting::Counting;

pub const T0: i64 = 1_800_000_000;

pub type Store = Arc<Counting<MemoryStore>>;

/// One request: the `Authorization` header (if any) and what must come back.
pub struct Case {
    pub name: &'static str,
    pub authorization: Option<String>,
    pub status: u16,
    pub code: Option<&'static str>,
    /// A substring the `WWW-Authenticate` header must contain; `None` means
    /// the header must be absent.
    pub www_authenticate: Option<&'static str>,
}

pub struct Fixture {
    pub guard: Guard<Store>,
    pub store: Store,
    pub clock: FakeClock,
    pub valid: String,
}

/// A guard with users alice (valid token), bob (revoked), carol (deleted).
pub async fn fixture() -> (Fixture, Vec<Case>) {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    for u in ["alice", "bob", "carol", "dave"] {
        store.inner.insert(u, Cutoff::default());
    }
    let guard = Guard::builder(
        Keys::hmac(Algorithm::HS256, super::SECRET).unwrap(),
        store.clone(),
    )
    .clock(clock.clone())
    .sessions(SessionConfig::new(RefreshKey::new(super::SECRET).unwrap()))
    .build()
    .unwrap();
    let valid = guard.issue("alice", &()).await.unwrap();
    let logged_out = guard.login("alice", &()).await.unwrap();
    guard
        .revoke_session("alice", &logged_out.session_id)
        .await
        .unwrap();
    let session = guard.login("alice", &()).await.unwrap();
    let revoked = guard.issue("bob", &()).await.unwrap();
    guard.bump_version("bob").await.unwrap();
    let deleted = guard.issue("carol", &()).await.unwrap();
    store.inner.remove("carol");
    guard.clear_cache();
    clock.set(T0 - 2_000);
    let expired_soon = guard.issue("dave", &()).await.unwrap();
    clock.set(T0);
    let mut tampered = valid.clone();
    tampered.pop();
    tampered.push(if valid.ends_with('A') { 'B' } else { 'A' });
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        valid.split('.').nth(1).unwrap()
    );
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let cases = vec![
        Case {
            name: "missing header",
            authorization: None,
            status: 401,
            code: Some("missing_token"),
            www_authenticate: Some("Bearer"),
        },
        Case {
            name: "another scheme (RFC 6750 3.1: no error code)",
            authorization: Some("Basic YWxpY2U6cHc=".into()),
            status: 401,
            code: Some("missing_token"),
            www_authenticate: Some("Bearer"),
        },
        Case {
            name: "empty bearer",
            authorization: Some("Bearer ".into()),
            status: 400,
            code: Some("invalid_request"),
            www_authenticate: Some("invalid_request"),
        },
        Case {
            name: "garbage token",
            authorization: bearer("not-a-jwt"),
            status: 401,
            code: Some("malformed"),
            www_authenticate: Some("error=\"invalid_token\""),
        },
        Case {
            name: "bad signature",
            authorization: bearer(&tampered),
            status: 401,
            code: Some("invalid_signature"),
            www_authenticate: Some("invalid_token"),
        },
        Case {
            name: "alg none",
            authorization: bearer(&none),
            status: 401,
            code: Some("algorithm_not_allowed"),
            www_authenticate: Some("invalid_token"),
        },
        Case {
            name: "expired",
            authorization: bearer(&expired_soon),
            status: 401,
            code: Some("expired"),
            www_authenticate: Some("error_description=\"token expired\""),
        },
        Case {
            name: "revoked",
            authorization: bearer(&revoked),
            status: 401,
            code: Some("token_revoked"),
            www_authenticate: Some("token revoked (version)"),
        },
        Case {
            name: "unknown subject",
            authorization: bearer(&deleted),
            status: 401,
            code: Some("unknown_subject"),
            www_authenticate: Some("invalid_token"),
        },
        Case {
            name: "logged-out session",
            authorization: bearer(&logged_out.access_token),
            status: 401,
            code: Some("session_revoked"),
            www_authenticate: Some("Bearer error=\"invalid_token\""),
        },
        Case {
            name: "a refresh token as an access token",
            authorization: bearer(&session.refresh_token),
            status: 401,
            code: Some("malformed"),
            www_authenticate: Some("invalid_token"),
        },
        Case {
            name: "valid",
            authorization: bearer(&valid),
            status: 200,
            code: None,
            www_authenticate: None,
        },
        Case {
            name: "valid session",
            authorization: bearer(&session.access_token),
            status: 200,
            code: None,
            www_authenticate: None,
        },
    ];
    (
        Fixture {
            guard,
            store,
            clock,
            valid,
        },
        cases,
    )
}

impl Case {
    /// Asserts what a client received for this case.
    pub fn check(&self, status: u16, www: Option<&str>, content_type: Option<&str>, body: &str) {
        let name = self.name;
        assert_eq!(status, self.status, "{name}");
        match self.code {
            Some(code) => {
                assert_eq!(content_type, Some("application/json"), "{name}");
                let json: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(json["error"], code, "{name}");
            }
            None => assert_eq!(body, "alice:0", "{name}: the handler saw the subject"),
        }
        match self.www_authenticate {
            Some(needle) => {
                let www = www.unwrap_or_default();
                assert!(
                    www.starts_with("Bearer") && www.contains(needle),
                    "{name}: {www}"
                );
            }
            None => assert!(www.is_none(), "{name}"),
        }
        if let Some(token) = self
            .authorization
            .as_deref()
            .and_then(|a| a.split(' ').nth(1))
            && token.len() > 8
        {
            assert!(!body.contains(token), "{name}: the token is never echoed");
        }
    }
}

#[cfg(any(feature = "tower", feature = "actix"))]
/// One request for a layer reading the token from another place than
/// `Authorization: Bearer`, or from several places in order, and what the
/// required layer must answer. Behind an optional layer the same request is
/// anonymous when the answer is `missing_token`, and answered the same way
/// otherwise.
pub struct SourceCase {
    pub name: &'static str,
    /// One source (set with `token_source`) or several in order (set with
    /// `token_sources`).
    pub sources: Vec<TokenSource>,
    pub headers: Vec<(&'static str, String)>,
    pub status: u16,
    /// `None`: the handler answered (alice).
    pub code: Option<&'static str>,
}

#[cfg(any(feature = "tower", feature = "actix"))]
/// Cookie and custom-header sources: found, absent, empty, bad, revoked.
pub fn source_cases(f: &Fixture, cases: &[Case]) -> Vec<SourceCase> {
    let token = |name: &str| {
        cases
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.authorization.as_deref())
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap()
            .to_owned()
    };
    let (valid, revoked, expired) = (f.valid.clone(), token("revoked"), token("expired"));
    let cookie = [TokenSource::Cookie("session")];
    let header = [TokenSource::Header("X-Api-Token")];
    let case =
        |name, sources: &[TokenSource], headers: Vec<(&'static str, String)>, status, code| {
            SourceCase {
                name,
                sources: sources.to_vec(),
                headers,
                status,
                code,
            }
        };
    vec![
        case(
            "cookie",
            &cookie,
            vec![("cookie", format!("session={valid}"))],
            200,
            None,
        ),
        case(
            "cookie among others",
            &cookie,
            vec![("cookie", format!("theme=dark; session={valid}; lang=en"))],
            200,
            None,
        ),
        case(
            "cookie in a second Cookie header",
            &cookie,
            vec![
                ("cookie", "theme=dark".into()),
                ("cookie", format!("session={valid}")),
            ],
            200,
            None,
        ),
        case(
            "quoted cookie",
            &cookie,
            vec![("cookie", format!("session=\"{valid}\""))],
            200,
            None,
        ),
        case(
            "no such cookie",
            &cookie,
            vec![("cookie", format!("sessionx={valid}; other=1"))],
            401,
            Some("missing_token"),
        ),
        case(
            "a bearer header does not count for a cookie source",
            &cookie,
            vec![("authorization", format!("Bearer {valid}"))],
            401,
            Some("missing_token"),
        ),
        case(
            "empty cookie",
            &cookie,
            vec![("cookie", "session=; theme=dark".into())],
            400,
            Some("invalid_request"),
        ),
        case(
            "garbage cookie",
            &cookie,
            vec![("cookie", "session=not-a-jwt".into())],
            401,
            Some("malformed"),
        ),
        case(
            "revoked cookie",
            &cookie,
            vec![("cookie", format!("session={revoked}"))],
            401,
            Some("token_revoked"),
        ),
        case(
            "header",
            &header,
            vec![("x-api-token", valid.clone())],
            200,
            None,
        ),
        case("no header", &header, vec![], 401, Some("missing_token")),
        case(
            "header twice",
            &header,
            vec![
                ("x-api-token", valid.clone()),
                ("x-api-token", valid.clone()),
            ],
            400,
            Some("invalid_request"),
        ),
        case(
            "header with a scheme",
            &header,
            vec![("x-api-token", format!("Bearer {valid}"))],
            400,
            Some("invalid_request"),
        ),
        case(
            "expired in the header",
            &header,
            vec![("x-api-token", expired)],
            401,
            Some("expired"),
        ),
    ]
}

#[cfg(any(feature = "tower", feature = "actix"))]
/// Lists of sources: the first source present in the request decides, and
/// a bad token there is rejected, never skipped for a later source.
pub fn source_list_cases(f: &Fixture, cases: &[Case]) -> Vec<SourceCase> {
    let token = |name: &str| {
        cases
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.authorization.as_deref())
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap()
            .to_owned()
    };
    let (valid, revoked, expired) = (f.valid.clone(), token("revoked"), token("expired"));
    let bearer_then_cookie = [TokenSource::Bearer, TokenSource::Cookie("session")];
    let cookie_then_bearer = [TokenSource::Cookie("session"), TokenSource::Bearer];
    let header_then_cookie = [
        TokenSource::Header("X-Api-Token"),
        TokenSource::Cookie("session"),
    ];
    let case =
        |name, sources: &[TokenSource], headers: Vec<(&'static str, String)>, status, code| {
            SourceCase {
                name,
                sources: sources.to_vec(),
                headers,
                status,
                code,
            }
        };
    let authorization = |t: &str| ("authorization", format!("Bearer {t}"));
    let session_cookie = |t: &str| ("cookie", format!("session={t}"));
    vec![
        case(
            "bearer then cookie: only a bearer header",
            &bearer_then_cookie,
            vec![authorization(&valid)],
            200,
            None,
        ),
        case(
            "bearer then cookie: only a cookie",
            &bearer_then_cookie,
            vec![session_cookie(&valid)],
            200,
            None,
        ),
        case(
            "bearer then cookie: both, the bearer header decides",
            &bearer_then_cookie,
            vec![authorization(&valid), session_cookie(&revoked)],
            200,
            None,
        ),
        case(
            "bearer then cookie: a revoked bearer token is not saved by a valid cookie",
            &bearer_then_cookie,
            vec![authorization(&revoked), session_cookie(&valid)],
            401,
            Some("token_revoked"),
        ),
        case(
            "bearer then cookie: a garbage bearer token is not skipped",
            &bearer_then_cookie,
            vec![authorization("not-a-jwt"), session_cookie(&valid)],
            401,
            Some("malformed"),
        ),
        case(
            "bearer then cookie: an empty bearer token is not skipped",
            &bearer_then_cookie,
            vec![
                ("authorization", "Bearer ".to_owned()),
                session_cookie(&valid),
            ],
            400,
            Some("invalid_request"),
        ),
        case(
            "bearer then cookie: another scheme is no bearer token, the cookie decides",
            &bearer_then_cookie,
            vec![
                ("authorization", "Basic YWxpY2U6cHc=".to_owned()),
                session_cookie(&valid),
            ],
            200,
            None,
        ),
        case(
            "bearer then cookie: neither",
            &bearer_then_cookie,
            vec![("cookie", format!("theme=dark; other={valid}"))],
            401,
            Some("missing_token"),
        ),
        case(
            "cookie then bearer: both, the cookie decides",
            &cookie_then_bearer,
            vec![authorization(&revoked), session_cookie(&valid)],
            200,
            None,
        ),
        case(
            "cookie then bearer: an expired cookie is not saved by a valid bearer token",
            &cookie_then_bearer,
            vec![authorization(&valid), session_cookie(&expired)],
            401,
            Some("expired"),
        ),
        case(
            "header then cookie: a repeated header is rejected, not skipped",
            &header_then_cookie,
            vec![
                ("x-api-token", valid.clone()),
                ("x-api-token", valid.clone()),
                session_cookie(&valid),
            ],
            400,
            Some("invalid_request"),
        ),
    ]
}

#[cfg(any(feature = "tower", feature = "actix"))]
impl SourceCase {
    /// Asserts what a client received, behind a required (`optional =
    /// false`) or an optional layer whose handler answers "anonymous"
    /// without a token.
    pub fn check(&self, optional: bool, status: u16, body: &str) {
        let name = self.name;
        match self.code {
            Some("missing_token") if optional => {
                assert_eq!((status, body), (200, "anonymous"), "{name} (optional)")
            }
            Some(code) => {
                assert_eq!(status, self.status, "{name} (optional: {optional})");
                let json: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(json["error"], code, "{name} (optional: {optional})");
            }
            None => assert_eq!(
                (status, body),
                (200, "alice"),
                "{name} (optional: {optional})"
            ),
        }
    }
}

/// The lines of the first fenced block after `marker` in `text`.
pub fn block_after(text: &str, marker: &str, fence: &str) -> Vec<String> {
    let rest = &text[text.find(marker).unwrap_or_else(|| panic!("no {marker}"))..];
    let start = rest.find(fence).unwrap() + fence.len();
    let rest = &rest[start..];
    let rest = &rest[rest.find('\n').unwrap() + 1..];
    let end = rest.find("```").unwrap();
    rest[..end]
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// The visible lines of the rustdoc example after `marker` in a module's
/// `//!` docs: hidden (`# `) lines removed, as a reader of the docs sees it.
pub fn rustdoc_block_after(source: &str, marker: &str) -> Vec<String> {
    let docs: String = source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    block_after(&docs, marker, "```")
        .into_iter()
        .filter(|l| !(l == "#" || l.starts_with("# ")))
        .collect()
}
