//! Differential test against `jsonwebtoken::decode`: the guard never accepts
//! a token that `decode` (same key, equivalent `Validation`) rejects. The
//! property is one-directional: the guard may be stricter (it rejects `crit`,
//! JSON arrays, floats in time claims, a future `iat`, …; see README, "Design
//! decisions"), never laxer.
//!
//! The corpus is generated: every member of jsonwebtoken's `Header` and every
//! registered claim with values of every JSON shape (wrong types, lone UTF-16
//! surrogates, numbers out of range, nesting around serde_json's depth
//! limit, nested objects with odd keys), duplicates (also through escaped
//! names), unknown members, and `aud`/`iss` combinations, each signed with
//! the test key and judged by four guard configurations. A proptest then
//! builds random headers and claims from the same pools. Every difference
//! found this way has a named regression test below.

mod common;

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use jwt_revoke::{Algorithm, Cutoff, EncodingKey, Error, FakeClock, Guard, Keys, MemoryStore};
use proptest::prelude::*;

const ISS: &str = "https://issuer.example";
const AUD: &str = "api";

/// Wall-clock seconds: `jsonwebtoken::decode` reads the system clock, so the
/// guard's fake clock is set to the same instant. Time claims in the corpus
/// are an hour away from any boundary, so the few seconds a run takes never
/// matter.
fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap())
        .unwrap()
}

/// One guard configuration and the `Validation` that asks jsonwebtoken for
/// the same checks.
#[derive(Clone, Copy, Debug)]
struct Config {
    name: &'static str,
    issuer: bool,
    audience: bool,
    foreign: bool,
    any_audience: bool,
}

const CONFIGS: [Config; 4] = [
    Config {
        name: "default",
        issuer: false,
        audience: false,
        foreign: false,
        any_audience: false,
    },
    Config {
        name: "issuer+audience",
        issuer: true,
        audience: true,
        foreign: false,
        any_audience: false,
    },
    Config {
        name: "foreign",
        issuer: false,
        audience: false,
        foreign: true,
        any_audience: false,
    },
    Config {
        name: "foreign+any_audience",
        issuer: false,
        audience: false,
        foreign: true,
        any_audience: true,
    },
];

struct Judge {
    config: Config,
    guard: Guard<MemoryStore>,
    validation: Validation,
}

fn judge(config: Config, now: i64) -> Judge {
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    store.insert("alice", Cutoff::default());
    let keys = Keys::hmac(Algorithm::HS256, common::SECRET)
        .unwrap()
        .with_kid("k1");
    let mut b = Guard::builder(keys, store)
        .clock(FakeClock::new(now))
        .leeway(std::time::Duration::from_secs(60))
        .foreign_tokens(config.foreign)
        .accept_any_audience(config.any_audience);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 60;
    validation.validate_exp = true;
    // The guard checks `nbf` whenever it is present.
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if config.issuer {
        b = b.issuer(ISS);
        validation.set_issuer(&[ISS]);
        required.push("iss");
    }
    if config.audience {
        b = b.audience(AUD);
        validation.set_audience(&[AUD]);
        required.push("aud");
    }
    if config.any_audience {
        validation.validate_aud = false;
    }
    validation.set_required_spec_claims(&required);
    Judge {
        config,
        guard: b.build().unwrap(),
        validation,
    }
}

fn judges(now: i64) -> Vec<Judge> {
    CONFIGS.iter().map(|c| judge(*c, now)).collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// With both crypto backends compiled in (`--all-features`), jsonwebtoken
/// needs a process provider; building a guard installs it.
static PROVIDER: LazyLock<()> = LazyLock::new(|| {
    judge(CONFIGS[0], 0);
});

/// `header.payload.signature`, HS256 with the test secret over raw JSON text.
fn signed(header: &str, claims: &str) -> String {
    LazyLock::force(&PROVIDER);
    let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(common::SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{sig}")
}

/// The guard's verdict (with no custom claims, its laxest mode) and
/// jsonwebtoken's, as codes.
async fn verdicts(j: &Judge, token: &str) -> (Result<(), &'static str>, Result<(), String>) {
    let guard = j
        .guard
        .validate::<()>(token)
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    let reference = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_secret(common::SECRET),
        &j.validation,
    )
    .map(|_| ())
    .map_err(|e| format!("{:?}", e.kind()));
    (guard, reference)
}

/// A JSON object as text, members in order (duplicates allowed).
fn object(members: &[(String, String)]) -> String {
    let body: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", body.join(","))
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Values of every JSON shape, as text. `\\u` sequences are JSON escapes.
fn values() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("null", "null".into()),
        ("int", "1".into()),
        ("negative", "-1".into()),
        ("float", "1.5".into()),
        ("beyond u64", "18446744073709551616".into()),
        ("1e400 (beyond f64)", "1e400".into()),
        ("400 digits (beyond f64)", "1".repeat(400)),
        ("-1e400", "-1e400".into()),
        ("1e-400 (underflow)", "1e-400".into()),
        ("true", "true".into()),
        ("string", q("x")),
        ("empty string", q("")),
        ("lone high surrogate", q(r"\ud800")),
        ("lone low surrogate", q(r"\udc00")),
        ("lone high surrogate, uppercase", q(r"\uD8FF")),
        ("high surrogate then char", q(r"\ud800x")),
        ("two high surrogates", q(r"\ud800\ud800")),
        ("reversed pair", q(r"\udc00\ud800")),
        ("high surrogate then other escape", q(r"\ud800\n")),
        ("valid pair", q(r"\ud83d\ude00")),
        ("escaped backslash then u", q(r"\\ud800")),
        ("escaped quote", q(r#"\"\ud800"#)),
        ("empty array", "[]".into()),
        ("array of strings", r#"["a","b"]"#.into()),
        ("array of ints", "[1]".into()),
        ("mixed array", r#"["a",1]"#.into()),
        ("array with surrogate", format!("[{}]", q(r"\ud800"))),
        ("array with 1e400", "[1e400]".into()),
        ("empty object", "{}".into()),
        ("object", r#"{"a":1}"#.into()),
        (
            "object with surrogate key",
            format!("{{{}:1}}", q(r"\udfff")),
        ),
        (
            "object with surrogate value",
            format!("{{\"a\":{}}}", q(r"\ud800")),
        ),
        ("object with duplicate keys", r#"{"a":1,"a":2}"#.into()),
        ("object with 1e400", r#"{"a":[1e400]}"#.into()),
        ("oct jwk", r#"{"kty":"oct","k":"AAAA"}"#.into()),
        ("jwk with a wrong field", r#"{"kty":"oct","k":5}"#.into()),
        ("alg as a unit-variant map", r#"{"HS256":null}"#.into()),
        ("HS256", q("HS256")),
        ("HS384", q("HS384")),
        ("none", q("none")),
        ("kid k1", q("k1")),
        ("enc", q("A128GCM")),
        ("zip", q("DEF")),
        ("alice", q("alice")),
        ("escaped alice", q(r"\u0061lice")),
        ("api", q(AUD)),
        ("[api]", format!("[{}]", q(AUD))),
        ("issuer", q(ISS)),
    ];
    // serde_json allows 128 levels; the enclosing object takes one.
    for depth in [126, 127, 128, 129, 300] {
        v.push((
            match depth {
                126 => "nested 126",
                127 => "nested 127",
                128 => "nested 128",
                129 => "nested 129",
                _ => "nested 300",
            },
            nested(depth),
        ));
    }
    v
}

/// Every member of jsonwebtoken 11.1's `Header` (src/header.rs), plus names
/// it does not know and an escaped spelling of a known one.
const HEADER_KEYS: &[&str] = &[
    "typ",
    "alg",
    "cty",
    "jku",
    "jwk",
    "kid",
    "x5u",
    "x5c",
    "x5t",
    "x5t#S256",
    "crit",
    "enc",
    "zip",
    "url",
    "nonce",
    "b64",
    "x",
    r"\u0074yp",
    r"x5t\u0023S256",
];

/// Registered claims (ours and jsonwebtoken's), an unknown one, and an
/// escaped spelling.
const CLAIM_KEYS: &[&str] = &[
    "sub",
    "iat",
    "exp",
    "nbf",
    "ver",
    "iss",
    "aud",
    "jti",
    "x",
    r"\u0065xp",
    r"\u0073ub",
];

fn base_header() -> Vec<(String, String)> {
    vec![(q("alg"), q("HS256")), (q("typ"), q("JWT"))]
}

fn base_claims(now: i64) -> Vec<(String, String)> {
    vec![
        (q("sub"), q("alice")),
        (q("iat"), (now - 10).to_string()),
        (q("exp"), (now + 3600).to_string()),
        (q("ver"), "0".into()),
    ]
}

/// Sets `key` (replacing a member of the same raw name) or appends it.
fn with(mut members: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    let key = q(key);
    match members.iter_mut().find(|(k, _)| *k == key) {
        Some(m) => m.1 = value.to_owned(),
        None => members.push((key, value.to_owned())),
    }
    members
}

fn push(mut members: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    members.push((q(key), value.to_owned()));
    members
}

struct Case {
    name: String,
    header: String,
    claims: String,
}

/// The deterministic corpus.
fn corpus(now: i64) -> Vec<Case> {
    let values = values();
    let claims0 = object(&base_claims(now));
    let header0 = object(&base_header());
    let mut cases = vec![Case {
        name: "base".into(),
        header: header0.clone(),
        claims: claims0.clone(),
    }];
    // Header members of every shape, set and duplicated.
    for key in HEADER_KEYS {
        for (vname, value) in &values {
            cases.push(Case {
                name: format!("header {key} = {vname}"),
                header: object(&with(base_header(), key, value)),
                claims: claims0.clone(),
            });
            cases.push(Case {
                name: format!("header {key} twice (= {vname})"),
                header: object(&push(with(base_header(), key, value), key, value)),
                claims: claims0.clone(),
            });
        }
    }
    // Duplicates through an escaped name.
    for (a, b, v) in [
        ("typ", r"\u0074yp", q("JWT")),
        ("alg", r"\u0061lg", q("HS256")),
        ("kid", r"\u006bid", q("k1")),
        ("x5t#S256", r"x5t\u0023S256", q("abc")),
    ] {
        cases.push(Case {
            name: format!("header {a} and {b}"),
            header: object(&push(with(base_header(), a, &v), b, &v)),
            claims: claims0.clone(),
        });
    }
    // Unknown top-level names that are not valid Unicode.
    for key in [r"\ud800", r"\udc00x", r"\ud800\ud800"] {
        cases.push(Case {
            name: format!("header member named {key}"),
            header: object(&push(base_header(), key, "1")),
            claims: claims0.clone(),
        });
        cases.push(Case {
            name: format!("claim named {key}"),
            header: header0.clone(),
            claims: object(&push(base_claims(now), key, "1")),
        });
    }
    // Claims of every shape, set and duplicated.
    for key in CLAIM_KEYS {
        for (vname, value) in &values {
            cases.push(Case {
                name: format!("claim {key} = {vname}"),
                header: header0.clone(),
                claims: object(&with(base_claims(now), key, value)),
            });
            cases.push(Case {
                name: format!("claim {key} twice (= {vname})"),
                header: header0.clone(),
                claims: object(&push(with(base_claims(now), key, value), key, value)),
            });
        }
    }
    // Time claims around the clock (an hour from any boundary).
    for (key, value) in [
        ("exp", (now - 3600).to_string()),
        ("exp", format!("{}.0", now + 3600)),
        ("exp", format!("{}.5", now + 3600)),
        ("exp", format!("{}e0", now + 3600)),
        ("nbf", (now - 3600).to_string()),
        ("nbf", (now + 3600).to_string()),
        ("nbf", format!("{}.0", now - 3600)),
        ("iat", (now + 3600).to_string()),
        ("iat", format!("{}.0", now - 10)),
    ] {
        cases.push(Case {
            name: format!("claim {key} = {value}"),
            header: header0.clone(),
            claims: object(&with(base_claims(now), key, &value)),
        });
    }
    // `aud` × `iss`.
    let auds = [
        None,
        Some("null".to_owned()),
        Some(q(AUD)),
        Some(q("other")),
        Some(format!("[{}]", q(AUD))),
        Some(format!("[{},{}]", q("other"), q(AUD))),
        Some(r#"["other"]"#.to_owned()),
        Some("[]".to_owned()),
        Some("[1]".to_owned()),
        Some(format!("[{},1]", q(AUD))),
        Some(format!("[{},{}]", q(AUD), q(AUD))),
    ];
    let isss = [
        None,
        Some("null".to_owned()),
        Some(q(ISS)),
        Some(q("other")),
        Some(format!("[{}]", q(ISS))),
        Some("1".to_owned()),
    ];
    for aud in &auds {
        for iss in &isss {
            let mut c = base_claims(now);
            if let Some(a) = aud {
                c = with(c, "aud", a);
            }
            if let Some(i) = iss {
                c = with(c, "iss", i);
            }
            cases.push(Case {
                name: format!("aud {aud:?} iss {iss:?}"),
                header: header0.clone(),
                claims: object(&c),
            });
        }
    }
    cases
}

#[tokio::test]
async fn guard_never_accepts_what_jsonwebtoken_rejects_over_the_corpus() {
    let now = wall_now();
    let judges = judges(now);
    let cases = corpus(now);
    assert!(cases.len() > 2_000, "corpus of {} cases", cases.len());
    let mut failures = Vec::new();
    let (mut both_accept, mut reference_rejects) = (0usize, 0usize);
    for j in &judges {
        for case in &cases {
            let token = signed(&case.header, &case.claims);
            let (guard, reference) = verdicts(j, &token).await;
            match (&guard, &reference) {
                (Ok(()), Err(e)) => failures.push(format!(
                    "[{}] {}: guard accepts, jsonwebtoken rejects ({e})\n  header {}\n  claims {}",
                    j.config.name, case.name, case.header, case.claims
                )),
                (Ok(()), Ok(())) => both_accept += 1,
                (Err(_), Err(_)) => reference_rejects += 1,
                (Err(_), Ok(())) => {}
            }
        }
    }
    // The corpus exercises both verdicts in every configuration.
    assert!(
        both_accept > 500 && reference_rejects > 500,
        "accepted by both {both_accept}, rejected by jsonwebtoken {reference_rejects}"
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_base_token_is_accepted_by_both_in_every_configuration() {
    let now = wall_now();
    for j in judges(now) {
        let mut claims = base_claims(now);
        if j.config.issuer {
            claims = with(claims, "iss", &q(ISS));
        }
        if j.config.audience {
            claims = with(claims, "aud", &q(AUD));
        }
        let token = signed(&object(&base_header()), &object(&claims));
        let (guard, reference) = verdicts(&j, &token).await;
        assert_eq!(guard, Ok(()), "{}", j.config.name);
        assert_eq!(reference, Ok(()), "{}", j.config.name);
    }
}

// ---------------------------------------------------------------------------
// Random headers and claims from the same pools.

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

static NOW: LazyLock<i64> = LazyLock::new(wall_now);

static JUDGES: LazyLock<Vec<Judge>> = LazyLock::new(|| judges(*NOW));

/// A JSON value as text: leaves from the pool, nested in arrays and objects.
fn json_value() -> impl Strategy<Value = String> {
    let leaves: Vec<String> = values().into_iter().map(|(_, v)| v).collect();
    let leaf = proptest::sample::select(leaves);
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((member_name(), inner), 0..4).prop_map(|m| {
                let body: Vec<String> = m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    let names: Vec<String> = HEADER_KEYS
        .iter()
        .chain(CLAIM_KEYS)
        .map(|k| q(k))
        .chain([q(r"\ud800"), q(r"\udbff\udfff"), q("")])
        .collect();
    proptest::sample::select(names)
}

/// A base member list with random members inserted (possibly duplicating or
/// replacing a base member) and some base members dropped.
fn mutated(base: Vec<(String, String)>) -> impl Strategy<Value = String> {
    let n = base.len();
    (
        proptest::collection::vec(any::<bool>(), n),
        proptest::collection::vec(
            (
                any::<proptest::sample::Index>(),
                member_name(),
                json_value(),
            ),
            0..4,
        ),
    )
        .prop_map(move |(keep, inserts)| {
            let mut members: Vec<(String, String)> = base
                .iter()
                .zip(&keep)
                // Keep most base members: dropping one only gives a rejection.
                .enumerate()
                .filter(|(i, (_, k))| **k || i % 2 == 0)
                .map(|(_, (m, _))| m.clone())
                .collect();
            for (at, name, value) in inserts {
                let at = at.index(members.len() + 1);
                members.insert(at, (name, value));
            }
            object(&members)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn guard_never_accepts_what_jsonwebtoken_rejects_under_mutation(
        header in mutated(base_header()),
        claims in mutated(base_claims(*NOW)),
    ) {
        let token = signed(&header, &claims);
        for j in JUDGES.iter() {
            let (guard, reference) = RT.block_on(verdicts(j, &token));
            prop_assert!(
                !(guard.is_ok() && reference.is_err()),
                "[{}] guard accepts, jsonwebtoken rejects ({:?})\n  header {}\n  claims {}",
                j.config.name, reference, header, claims
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Named regressions: each difference the corpus found, guard and jsonwebtoken
// side by side.

async fn both_reject(config: Config, header: &str, claims: &str) -> &'static str {
    let now = wall_now();
    let j = judge(config, now);
    let header = header.replace("NOW", &now.to_string());
    let claims = claims
        .replace("IAT", &(now - 10).to_string())
        .replace("EXP", &(now + 3600).to_string());
    let token = signed(&header, &claims);
    let (guard, reference) = verdicts(&j, &token).await;
    assert!(reference.is_err(), "jsonwebtoken accepts {header} {claims}");
    match guard {
        Ok(()) => panic!("guard accepts {header} {claims}"),
        Err(code) => code,
    }
}

const DEFAULT: Config = CONFIGS[0];
const FOREIGN: Config = CONFIGS[2];
const CLAIMS: &str = r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0}"#;

#[tokio::test]
async fn header_members_of_the_wrong_type_are_rejected() {
    for header in [
        r#"{"alg":"HS256","typ":1}"#,
        r#"{"alg":"HS256","typ":["JWT"]}"#,
        r#"{"alg":"HS256","cty":{}}"#,
        r#"{"alg":"HS256","jku":true}"#,
        r#"{"alg":"HS256","x5u":1}"#,
        r#"{"alg":"HS256","x5t":[]}"#,
        r#"{"alg":"HS256","x5t#S256":2}"#,
        r#"{"alg":"HS256","enc":1}"#,
        r#"{"alg":"HS256","zip":[]}"#,
        r#"{"alg":"HS256","url":1}"#,
        r#"{"alg":"HS256","nonce":{}}"#,
        r#"{"alg":"HS256","kid":1}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, CLAIMS).await,
            "malformed",
            "{header}"
        );
    }
}

#[tokio::test]
async fn header_jwk_must_be_a_jwk() {
    for header in [
        r#"{"alg":"HS256","jwk":"key"}"#,
        r#"{"alg":"HS256","jwk":[]}"#,
        r#"{"alg":"HS256","jwk":1}"#,
        r#"{"alg":"HS256","jwk":{"kid":5}}"#,
        r#"{"alg":"HS256","jwk":{"x":"\ud800"}}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, CLAIMS).await,
            "malformed",
            "{header}"
        );
    }
}

#[tokio::test]
async fn header_x5c_must_be_an_array_of_strings() {
    for header in [
        r#"{"alg":"HS256","x5c":"cert"}"#,
        r#"{"alg":"HS256","x5c":{}}"#,
        r#"{"alg":"HS256","x5c":[1]}"#,
        r#"{"alg":"HS256","x5c":["a",null]}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, CLAIMS).await,
            "malformed",
            "{header}"
        );
    }
}

#[tokio::test]
async fn duplicate_known_header_members_are_rejected() {
    for header in [
        r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT","\u0074yp":"JWT"}"#,
        r#"{"alg":"HS256","kid":"k1","kid":"k1"}"#,
        r#"{"alg":"HS256","cty":null,"cty":null}"#,
        r#"{"alg":"HS256","x5t#S256":"a","x5t\u0023S256":"a"}"#,
        r#"{"alg":"HS256","nonce":"n","nonce":"n"}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, CLAIMS).await,
            "malformed",
            "{header}"
        );
    }
}

#[tokio::test]
async fn lone_surrogates_in_skipped_header_members_are_rejected() {
    for header in [
        r#"{"alg":"HS256","x":"\ud800"}"#,
        r#"{"alg":"HS256","x":"\udc00"}"#,
        r#"{"alg":"HS256","x":"\ud800\ud800"}"#,
        r#"{"alg":"HS256","x":["\uDBFF"]}"#,
        r#"{"alg":"HS256","x":{"\ud800":1}}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, CLAIMS).await,
            "malformed",
            "{header}"
        );
    }
}

#[tokio::test]
async fn lone_surrogates_in_skipped_claims_are_rejected() {
    let header = r#"{"alg":"HS256"}"#;
    for claims in [
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":"\ud800"}"#,
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":"a\udc00b"}"#,
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":{"y":["\ud800x"]}}"#,
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":{"\udfff":1}}"#,
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"jti":"\ud800"}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, claims).await,
            "malformed",
            "{claims}"
        );
    }
    // In foreign mode `ver` is skipped too.
    let claims = r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":"\ud800"}"#;
    assert_eq!(both_reject(FOREIGN, header, claims).await, "malformed");
}

#[tokio::test]
async fn numbers_beyond_f64_in_skipped_members_are_rejected() {
    let header = r#"{"alg":"HS256"}"#;
    for claims in [
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":1e400}"#,
        r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":[-1e400]}"#,
    ] {
        assert_eq!(
            both_reject(DEFAULT, header, claims).await,
            "malformed",
            "{claims}"
        );
    }
    let claims = r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":1e400}"#;
    assert_eq!(both_reject(FOREIGN, header, claims).await, "malformed");
    assert_eq!(
        both_reject(DEFAULT, r#"{"alg":"HS256","x":1e400}"#, CLAIMS).await,
        "malformed"
    );
}

#[tokio::test]
async fn nesting_beyond_the_depth_limit_in_skipped_members_is_rejected() {
    let deep = nested(128);
    let claims = format!(r#"{{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"x":{deep}}}"#);
    assert_eq!(
        both_reject(DEFAULT, r#"{"alg":"HS256"}"#, &claims).await,
        "malformed"
    );
    let header = format!(r#"{{"alg":"HS256","x":{deep}}}"#);
    assert_eq!(both_reject(DEFAULT, &header, CLAIMS).await, "malformed");
}

#[tokio::test]
async fn nbf_null_is_rejected() {
    let claims = r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"nbf":null}"#;
    assert_eq!(
        both_reject(DEFAULT, r#"{"alg":"HS256"}"#, claims).await,
        "malformed"
    );
}

#[tokio::test]
async fn aud_without_a_configured_audience_is_rejected_by_default() {
    for aud in [r#""api""#, r#"["api"]"#, "[]", r#"["a","b"]"#] {
        let claims = format!(r#"{{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"aud":{aud}}}"#);
        assert_eq!(
            both_reject(DEFAULT, r#"{"alg":"HS256"}"#, &claims).await,
            "invalid_audience",
            "{aud}"
        );
    }
}

#[tokio::test]
async fn accept_any_audience_is_an_explicit_opt_out() {
    let now = wall_now();
    let claims = format!(
        r#"{{"sub":"alice","iat":{},"exp":{},"aud":["someone","else"]}}"#,
        now - 10,
        now + 3600
    );
    let token = signed(r#"{"alg":"HS256"}"#, &claims);
    let strict = judge(FOREIGN, now);
    assert!(matches!(
        strict.guard.validate::<()>(&token).await,
        Err(Error::InvalidAudience)
    ));
    let lax = judge(CONFIGS[3], now);
    assert!(lax.guard.validate::<()>(&token).await.is_ok());
    // `aud: null` is no audience at all.
    let claims = format!(
        r#"{{"sub":"alice","iat":{},"exp":{},"aud":null}}"#,
        now - 10,
        now + 3600
    );
    let token = signed(r#"{"alg":"HS256"}"#, &claims);
    assert!(strict.guard.validate::<()>(&token).await.is_ok());
    // A configured audience and the opt-out contradict each other.
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    let err = Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .audience(AUD)
        .accept_any_audience(true)
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "invalid_config");
}

// ---------------------------------------------------------------------------
// The deliberate differences listed in the README: jsonwebtoken accepts, the
// guard rejects. Kept honest here so the list stays true.

async fn only_guard_rejects(config: Config, header: &str, claims: &str) -> &'static str {
    let now = wall_now();
    let j = judge(config, now);
    let claims = claims
        .replace("IAT", &(now - 10).to_string())
        .replace("EXP", &(now + 3600).to_string());
    let token = signed(header, &claims);
    let (guard, reference) = verdicts(&j, &token).await;
    assert_eq!(reference, Ok(()), "jsonwebtoken rejects {header} {claims}");
    match guard {
        Ok(()) => panic!("guard accepts {header} {claims}"),
        Err(code) => code,
    }
}

#[tokio::test]
async fn deliberate_differences_are_stricter_only() {
    const HS: &str = r#"{"alg":"HS256"}"#;
    const ISS_AUD: Config = CONFIGS[1];
    const ANY_AUD: Config = CONFIGS[3];
    let cases: Vec<(&str, Config, &str, String, &str)> = vec![
        (
            "crit header",
            DEFAULT,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            CLAIMS.into(),
            "unsupported_critical_header",
        ),
        (
            "claims as a JSON array (exp, nbf, sub, iss, aud by position)",
            DEFAULT,
            HS,
            r#"[EXP,0,"alice",null,null]"#.into(),
            "malformed",
        ),
        (
            "alg in serde's enum-map form",
            DEFAULT,
            r#"{"alg":{"HS256":null}}"#,
            CLAIMS.into(),
            "malformed",
        ),
        (
            "kid naming no configured key",
            DEFAULT,
            r#"{"alg":"HS256","kid":"other"}"#,
            CLAIMS.into(),
            "unknown_key",
        ),
        (
            "exp as a float",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP.5,"ver":0}"#.into(),
            "malformed",
        ),
        (
            "exp beyond i64",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":9223372036854775808,"ver":0}"#.into(),
            "malformed",
        ),
        (
            "iat missing",
            DEFAULT,
            HS,
            r#"{"sub":"alice","exp":EXP,"ver":0}"#.into(),
            "missing_claim",
        ),
        (
            "iat in the future",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":EXP,"exp":EXP,"ver":0}"#.into(),
            "issued_in_future",
        ),
        (
            "ver missing (native mode)",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP}"#.into(),
            "missing_claim",
        ),
        (
            "ver not an integer (native mode)",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":"1"}"#.into(),
            "malformed",
        ),
        (
            "empty sub",
            DEFAULT,
            HS,
            r#"{"sub":"","iat":IAT,"exp":EXP,"ver":0}"#.into(),
            "malformed",
        ),
        (
            "iss as an array",
            ISS_AUD,
            HS,
            format!(
                r#"{{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"iss":["{ISS}"],"aud":"{AUD}"}}"#
            ),
            "malformed",
        ),
        (
            "iss of the wrong type, not checked",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"iss":5}"#.into(),
            "malformed",
        ),
        (
            "aud of the wrong type, not checked",
            ANY_AUD,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP,"aud":5}"#.into(),
            "malformed",
        ),
        (
            "duplicate iat",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"iat":IAT,"exp":EXP,"ver":0}"#.into(),
            "malformed",
        ),
        (
            "duplicate ver",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"ver":0}"#.into(),
            "malformed",
        ),
        (
            "sid of the wrong type (foreign mode too)",
            ANY_AUD,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP,"sid":12345}"#.into(),
            "malformed",
        ),
        (
            "duplicate sid",
            DEFAULT,
            HS,
            r#"{"sub":"alice","iat":IAT,"exp":EXP,"ver":0,"sid":"a","sid":"b"}"#.into(),
            "malformed",
        ),
    ];
    for (name, config, header, claims, code) in cases {
        assert_eq!(
            only_guard_rejects(config, header, &claims).await,
            code,
            "{name}"
        );
    }
}
