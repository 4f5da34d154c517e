//! Requests every web integration must answer the same way, with the
//! status, error code and `WWW-Authenticate` a client would see.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_revoke::{Algorithm, Cutoff, FakeClock, Guard, Keys, MemoryStore};

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
    let store = Arc::new(Counting::new(MemoryStore::new()));
    for u in ["alice", "bob", "carol", "dave"] {
        store.inner.insert(u, Cutoff::default());
    }
    let guard = Guard::builder(
        Keys::hmac(Algorithm::HS256, super::SECRET).unwrap(),
        store.clone(),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let valid = guard.issue("alice", &()).await.unwrap();
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
            name: "valid",
            authorization: bearer(&valid),
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
