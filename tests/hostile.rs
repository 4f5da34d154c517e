//! Hostile input: every malformed, forged or borderline token gets the
//! right `Error::code()` — never a panic, never a silent accept — and
//! tokens minted by an independent implementation (PyJWT) are judged the
//! same way.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_revoke::{
    Algorithm, Cutoff, DecodingKey, EncodingKey, Error, FakeClock, Guard, Keys, MemoryStore,
};
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000;

fn store() -> MemoryStore {
    let s = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    s.insert("alice", Cutoff::default());
    s.insert("bob", Cutoff::new(1, 0));
    s
}

fn guard_with(keys: Keys) -> Guard<MemoryStore> {
    Guard::builder(keys, store())
        .clock(FakeClock::new(T0))
        .build()
        .unwrap()
}

fn hs256_guard() -> Guard<MemoryStore> {
    guard_with(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` over arbitrary header and payload bytes,
/// HS256-signed with the test secret: a token only the key holder could make.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(common::SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{sig}")
}

const HS: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

fn claims(over: Value) -> Vec<u8> {
    let mut c = json!({"sub": "alice", "iat": T0, "exp": T0 + 600, "ver": 0});
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    serde_json::to_vec(&c).unwrap()
}

fn valid() -> String {
    signed(HS, &claims(json!({})))
}

async fn code(g: &Guard<MemoryStore>, token: &str) -> &'static str {
    match g.validate::<Value>(token).await {
        Ok(_) => "ok",
        Err(e) => {
            assert!(e.is_client_error(), "a bad token is a client error: {e:?}");
            e.code()
        }
    }
}

#[tokio::test]
async fn crafted_tokens_get_the_right_code() {
    let g = hs256_guard();
    let v = valid();
    let (h, p, s) = {
        let mut it = v.split('.');
        (
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
        )
    };
    let other_sig = signed(HS, &claims(json!({"sub": "bob"})));
    let other_sig = other_sig.rsplit('.').next().unwrap();
    let mut flipped = s.clone().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));

    let cases: Vec<(&str, String, &str)> = vec![
        ("valid", v.clone(), "ok"),
        ("empty string", String::new(), "malformed"),
        ("one segment", "abc".into(), "malformed"),
        ("two segments", format!("{h}.{p}"), "malformed"),
        ("four segments", format!("{v}.extra"), "malformed"),
        ("five segments (JWE)", format!("{h}.a.b.c.d"), "malformed"),
        ("empty header", format!(".{p}.{s}"), "malformed"),
        ("empty payload", format!("{h}..{s}"), "malformed"),
        ("non-base64url header", format!("!!!.{p}.{s}"), "malformed"),
        ("padded header", format!("{h}=.{p}.{s}"), "malformed"),
        // Any change to the signed text fails the signature first.
        (
            "standard base64 chars in payload",
            format!("{h}.{}+/.{s}", &p[..p.len() - 2]),
            "invalid_signature",
        ),
        (
            "whitespace inside",
            format!("{h}. {p}.{s}"),
            "invalid_signature",
        ),
        ("newline at end", format!("{v}\n"), "malformed"),
        (
            "non-ascii in payload",
            format!("{h}.{p}é.{s}"),
            "invalid_signature",
        ),
        ("non-ascii in header", format!("{h}é.{p}.{s}"), "malformed"),
        (
            "header not json",
            format!("{}.{p}.{s}", b64(b"hello")),
            "malformed",
        ),
        (
            "header json array",
            format!("{}.{p}.{s}", b64(b"[1,2]")),
            "malformed",
        ),
        (
            "header without alg",
            format!("{}.{p}.{s}", b64(br#"{"typ":"JWT"}"#)),
            "malformed",
        ),
        (
            "header alg not a string",
            format!("{}.{p}.{s}", b64(br#"{"alg":256}"#)),
            "malformed",
        ),
        (
            "header alg twice",
            format!("{}.{p}.{s}", b64(br#"{"alg":"HS256","alg":"none"}"#)),
            "malformed",
        ),
        (
            "unknown alg",
            format!("{}.{p}.{s}", b64(br#"{"alg":"HS999"}"#)),
            "algorithm_not_allowed",
        ),
        (
            "RS256 on an HS256 key",
            format!("{}.{p}.{s}", b64(br#"{"alg":"RS256"}"#)),
            "algorithm_not_allowed",
        ),
        (
            "HS512 on an HS256 key",
            format!("{}.{p}.{s}", b64(br#"{"alg":"HS512"}"#)),
            "algorithm_not_allowed",
        ),
        (
            "crit header",
            signed(br#"{"alg":"HS256","crit":["exp"]}"#, &claims(json!({}))),
            "unsupported_critical_header",
        ),
        (
            "unknown kid",
            signed(br#"{"alg":"HS256","kid":"other"}"#, &claims(json!({}))),
            "unknown_key",
        ),
        (
            "signature of another payload",
            format!("{h}.{p}.{other_sig}"),
            "invalid_signature",
        ),
        (
            "flipped signature byte",
            format!("{h}.{p}.{flipped}"),
            "invalid_signature",
        ),
        (
            "truncated signature",
            format!("{h}.{p}.{}", &s[..s.len() - 4]),
            "invalid_signature",
        ),
        ("empty signature", format!("{h}.{p}."), "invalid_signature"),
        (
            "signature not base64url",
            format!("{h}.{p}.!!!!"),
            "malformed",
        ),
        (
            "tampered payload",
            format!("{h}.{}.{s}", b64(&claims(json!({"sub": "bob"})))),
            "invalid_signature",
        ),
        // Signed by the key holder, hostile inside:
        (
            "payload not base64url (signed)",
            {
                let msg = format!("{}.%%%", b64(HS));
                let sig = jsonwebtoken::crypto::sign(
                    msg.as_bytes(),
                    &EncodingKey::from_secret(common::SECRET),
                    Algorithm::HS256,
                )
                .unwrap();
                format!("{msg}.{sig}")
            },
            "malformed",
        ),
        ("payload not json", signed(HS, b"not json"), "malformed"),
        (
            "payload non-utf8",
            signed(HS, b"{\"sub\":\"\xff\xfe\"}"),
            "malformed",
        ),
        ("payload json array", signed(HS, b"[1,2,3]"), "malformed"),
        ("payload json string", signed(HS, b"\"alice\""), "malformed"),
        (
            // Nesting beyond serde_json's depth limit anywhere in the claims
            // is malformed, as jsonwebtoken::decode has it (tests/differential.rs).
            "deeply nested unknown claim",
            signed(
                HS,
                format!(
                    r#"{{"sub":"alice","iat":{T0},"exp":{},"ver":0,"x":{deep}}}"#,
                    T0 + 600
                )
                .as_bytes(),
            ),
            "malformed",
        ),
        (
            "duplicate sub",
            signed(
                HS,
                format!(
                    r#"{{"sub":"alice","sub":"bob","iat":{T0},"exp":{},"ver":0}}"#,
                    T0 + 600
                )
                .as_bytes(),
            ),
            "malformed",
        ),
        (
            "duplicate ver",
            signed(
                HS,
                format!(
                    r#"{{"sub":"bob","iat":{T0},"exp":{},"ver":0,"ver":5}}"#,
                    T0 + 600
                )
                .as_bytes(),
            ),
            "malformed",
        ),
        (
            "ver as string",
            signed(HS, &claims(json!({"ver": "7"}))),
            "malformed",
        ),
        (
            "ver float 7.0",
            signed(
                HS,
                format!(
                    r#"{{"sub":"alice","iat":{T0},"exp":{},"ver":7.0}}"#,
                    T0 + 600
                )
                .as_bytes(),
            ),
            "malformed",
        ),
        (
            "ver 1.5",
            signed(HS, &claims(json!({"ver": 1.5}))),
            "malformed",
        ),
        (
            "ver negative",
            signed(HS, &claims(json!({"ver": -1}))),
            "malformed",
        ),
        (
            "ver beyond u64",
            signed(
                HS,
                format!(
                    r#"{{"sub":"alice","iat":{T0},"exp":{},"ver":18446744073709551616}}"#,
                    T0 + 600
                )
                .as_bytes(),
            ),
            "malformed",
        ),
        (
            "ver u64::MAX is just a large version",
            signed(HS, &claims(json!({"ver": u64::MAX}))),
            "ok",
        ),
        (
            "ver bool",
            signed(HS, &claims(json!({"ver": true}))),
            "malformed",
        ),
        (
            "iat as string",
            signed(HS, &claims(json!({"iat": T0.to_string()}))),
            "malformed",
        ),
        (
            "iat float",
            signed(HS, &claims(json!({"iat": 1.8e9}))),
            "malformed",
        ),
        (
            "iat negative",
            signed(HS, &claims(json!({"iat": -5}))),
            "malformed",
        ),
        (
            "iat u64::MAX",
            signed(HS, &claims(json!({"iat": u64::MAX}))),
            "malformed",
        ),
        (
            "iat i64::MAX",
            signed(HS, &claims(json!({"iat": i64::MAX}))),
            "issued_in_future",
        ),
        (
            "iat far in the future",
            signed(HS, &claims(json!({"iat": T0 + 86_400}))),
            "issued_in_future",
        ),
        (
            "iat at the leeway",
            signed(HS, &claims(json!({"iat": T0 + 60}))),
            "ok",
        ),
        (
            "iat past the leeway",
            signed(HS, &claims(json!({"iat": T0 + 61}))),
            "issued_in_future",
        ),
        (
            "exp as string",
            signed(HS, &claims(json!({"exp": "soon"}))),
            "malformed",
        ),
        (
            "exp negative",
            signed(HS, &claims(json!({"exp": -1}))),
            "malformed",
        ),
        (
            "exp beyond i64",
            signed(HS, &claims(json!({"exp": u64::MAX}))),
            "malformed",
        ),
        (
            "exp past, within leeway",
            signed(HS, &claims(json!({"iat": T0 - 100, "exp": T0 - 60}))),
            "ok",
        ),
        (
            "exp past, outside leeway",
            signed(HS, &claims(json!({"iat": T0 - 100, "exp": T0 - 61}))),
            "expired",
        ),
        (
            "nbf in the future",
            signed(HS, &claims(json!({"nbf": T0 + 3600}))),
            "not_yet_valid",
        ),
        (
            "nbf as string",
            signed(HS, &claims(json!({"nbf": "later"}))),
            "malformed",
        ),
        (
            "missing sub",
            signed(HS, &claims(json!({"sub": null}))),
            "missing_claim",
        ),
        (
            "missing iat",
            signed(HS, &claims(json!({"iat": null}))),
            "missing_claim",
        ),
        (
            "missing exp",
            signed(HS, &claims(json!({"exp": null}))),
            "missing_claim",
        ),
        (
            "missing ver",
            signed(HS, &claims(json!({"ver": null}))),
            "missing_claim",
        ),
        (
            "sub null",
            signed(
                HS,
                format!(r#"{{"sub":null,"iat":{T0},"exp":{},"ver":0}}"#, T0 + 600).as_bytes(),
            ),
            "missing_claim",
        ),
        (
            "sub empty",
            signed(HS, &claims(json!({"sub": ""}))),
            "malformed",
        ),
        (
            "sub number",
            signed(HS, &claims(json!({"sub": 42}))),
            "malformed",
        ),
        (
            "aud of the wrong type",
            signed(HS, &claims(json!({"aud": 5}))),
            "malformed",
        ),
        (
            "revoked version",
            signed(HS, &claims(json!({"sub": "bob", "ver": 0}))),
            "token_revoked",
        ),
        (
            "unknown subject",
            signed(HS, &claims(json!({"sub": "mallory"}))),
            "unknown_subject",
        ),
        (
            "escaped sub resolves to a known subject",
            signed(HS, &claims(json!({"sub": "al\u{0069}ce"}))),
            "ok",
        ),
    ];
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        for sig in ["", "c2lnbmF0dXJl"] {
            let token = format!("{header}.{p}.{sig}");
            assert_eq!(
                code(&g, &token).await,
                "algorithm_not_allowed",
                "alg {alg} sig {sig:?}"
            );
        }
    }
    let mut failures = Vec::new();
    for (name, token, expected) in &cases {
        let got = code(&g, token).await;
        if got != *expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn size_limit_applies_before_parsing_and_only_above_it() {
    let g = hs256_guard();
    // A valid token padded with a large custom claim, just under 8 KiB.
    let mut pad = 5_000;
    let under = loop {
        let t = signed(HS, &claims(json!({"pad": "x".repeat(pad)})));
        if t.len() >= 8 * 1024 - 4 {
            break t;
        }
        pad += 1;
    };
    assert!(under.len() <= 8 * 1024);
    assert_eq!(
        code(&g, &under).await,
        "ok",
        "under the limit is judged on its merits"
    );
    let over = signed(HS, &claims(json!({"pad": "x".repeat(pad + 10)})));
    assert!(over.len() > 8 * 1024);
    let err = g.validate::<Value>(&over).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 8192, .. }),
        "{err:?}"
    );
    // Megabytes of garbage are refused by length alone.
    assert_eq!(code(&g, &"A".repeat(4 << 20)).await, "too_large");
}

#[tokio::test]
async fn algorithm_confusion_with_a_public_key_as_hmac_secret_is_refused() {
    let rsa_pub = include_bytes!("vectors/keys/rsa_public.pem");
    let ec_pub = include_bytes!("vectors/keys/ec_public.pem");
    for (alg, public, decoding) in [
        (
            Algorithm::RS256,
            &rsa_pub[..],
            DecodingKey::from_rsa_pem(rsa_pub).unwrap(),
        ),
        (
            Algorithm::ES256,
            &ec_pub[..],
            DecodingKey::from_ec_pem(ec_pub).unwrap(),
        ),
    ] {
        let g = guard_with(Keys::verify_only(alg, decoding).unwrap());
        // The classic attack: HS256 "signed" with the public key's bytes.
        let msg = format!("{}.{}", b64(HS), b64(&claims(json!({}))));
        let sig = jsonwebtoken::crypto::sign(
            msg.as_bytes(),
            &EncodingKey::from_secret(public),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(
            code(&g, &format!("{msg}.{sig}")).await,
            "algorithm_not_allowed",
            "{alg:?}"
        );
    }
}

fn guard_for_vector(alg: &str, secret: &[u8]) -> Guard<MemoryStore> {
    let k = |n: &str| {
        std::fs::read(format!(
            "{}/tests/vectors/keys/{n}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let keys = match alg {
        "HS256" | "HS384" | "HS512" => Keys::hmac(alg.parse().unwrap(), secret).unwrap(),
        "RS256" | "RS384" | "PS256" => Keys::new(
            alg.parse().unwrap(),
            EncodingKey::from_rsa_pem(&k("rsa_private.pem")).unwrap(),
            DecodingKey::from_rsa_pem(&k("rsa_public.pem")).unwrap(),
        )
        .unwrap(),
        "ES256" => Keys::new(
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&k("ec_private.pem")).unwrap(),
            DecodingKey::from_ec_pem(&k("ec_public.pem")).unwrap(),
        )
        .unwrap(),
        "EdDSA" => Keys::new(
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&k("ed_private.pem")).unwrap(),
            DecodingKey::from_ed_pem(&k("ed_public.pem")).unwrap(),
        )
        .unwrap(),
        other => panic!("no key for {other}"),
    };
    guard_with(keys)
}

#[tokio::test]
async fn tokens_minted_by_pyjwt_are_judged_the_same_way() {
    let file: Value = serde_json::from_str(include_str!("vectors/pyjwt.json")).unwrap();
    assert_eq!(file["t0"], T0);
    let secret = file["hmac_secret"].as_str().unwrap().as_bytes();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 30);
    let mut failures = Vec::new();
    for v in vectors {
        let g = guard_for_vector(v["alg"].as_str().unwrap(), secret);
        let got = code(&g, v["token"].as_str().unwrap()).await;
        if got != v["expect"] {
            failures.push(format!(
                "{}: expected {}, got {got}",
                v["name"], v["expect"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn tokens_we_mint_for_every_algorithm_validate_and_revoke() {
    let secret = b"pyjwt-vector-secret-pyjwt-vector-secret-pyjwt-vector-secret-64b!";
    for alg in [
        "HS256", "HS384", "HS512", "RS256", "RS384", "PS256", "ES256", "EdDSA",
    ] {
        let g = guard_for_vector(alg, secret);
        let t = g.issue("alice", &()).await.unwrap();
        assert_eq!(code(&g, &t).await, "ok", "{alg}");
        g.bump_version("alice").await.unwrap();
        assert_eq!(code(&g, &t).await, "token_revoked", "{alg}");
    }
}

/// Derived `Deserialize` structs also accept a JSON array (fields by
/// position). A JOSE header and a claims set must be JSON objects (RFC 7515
/// §4, RFC 7519 §7.2); accepting arrays would make the guard honour tokens
/// that every other verifier rejects.
#[tokio::test]
async fn header_and_claims_must_be_json_objects() {
    let g = hs256_guard();
    // Positional forms of WireHeader (alg, kid, crit) and WireClaims
    // (sub, iat, exp, nbf, ver, iss, aud).
    let header_array = br#"["HS256",null,null]"#;
    let claims_array = format!(r#"["alice",{T0},{},null,0,null,null]"#, T0 + 600);
    for (name, token) in [
        ("header array", signed(header_array, &claims(json!({})))),
        (
            "short header array",
            signed(br#"["HS256"]"#, &claims(json!({}))),
        ),
        ("claims array", signed(HS, claims_array.as_bytes())),
        ("both arrays", signed(header_array, claims_array.as_bytes())),
        (
            "header array after whitespace",
            signed(b" \n[\"HS256\"]", &claims(json!({}))),
        ),
    ] {
        assert_eq!(code(&g, &token).await, "malformed", "{name}");
        assert_eq!(
            g.validate::<()>(&token).await.unwrap_err().code(),
            "malformed",
            "{name}"
        );
    }
    // Invalid UTF-8 inside a field nobody reads is still malformed.
    let hidden = [
        &claims(json!({}))[..claims(json!({})).len() - 1],
        b",\"x\":\"\xff\xfe\"}",
    ]
    .concat();
    let token = signed(HS, &hidden);
    assert_eq!(
        g.validate::<()>(&token).await.unwrap_err().code(),
        "malformed"
    );
    // Wherever it stands: a key, a nested key, an array element, `aud`, a
    // string where a number belongs, deep inside a skipped value.
    let open = &claims(json!({}))[..claims(json!({})).len() - 1];
    for tail in [
        &b",\"\xff\":1}"[..],
        b",\"x\":{\"\xc3\x28\":1}}",
        b",\"x\":[1,\"\xed\xa0\x80\"]}",
        b",\"aud\":[\"a\",\"\xff\"]}",
        b",\"nbf\":\"\xff\"}",
        b",\"x\":[[{\"y\":[\"\xf0\x28\x8c\xbc\"]}]]}",
        b",\"x\":\"ok\xc0\xaf\"}",
    ] {
        let token = signed(HS, &[open, tail].concat());
        assert_eq!(
            g.validate::<()>(&token).await.unwrap_err().code(),
            "malformed",
            "{}",
            String::from_utf8_lossy(tail)
        );
    }
    let token = signed(b"{\"alg\":\"HS256\",\"x\":\"\xff\"}", &claims(json!({})));
    assert_eq!(
        g.validate::<()>(&token).await.unwrap_err().code(),
        "malformed"
    );
    // Whitespace before an object is still fine.
    let token = signed(b" \t\r\n{\"alg\":\"HS256\"}", &claims(json!({})));
    assert_eq!(code(&g, &token).await, "ok");
}

/// The minimum HMAC secret length (the hash size, RFC 7518 §3.2) holds on
/// every path that takes an HMAC key, not only `Keys::hmac`: an empty or
/// short secret handed over as a ready-made `EncodingKey`/`DecodingKey` is a
/// configuration error, so a token signed with `""` can never validate.
#[tokio::test]
async fn short_hmac_secrets_are_refused_on_every_path() {
    let long = common::SECRET; // 32 bytes
    let short: &[&[u8]] = &[b"", b"x", &long[..31]];
    for s in short {
        let code = |r: Result<Keys, Error>| r.map(|_| ()).unwrap_err().code();
        assert_eq!(
            code(Keys::new(
                Algorithm::HS256,
                EncodingKey::from_secret(s),
                DecodingKey::from_secret(s)
            )),
            "invalid_config",
            "new, both {s:?}"
        );
        assert_eq!(
            code(Keys::new(
                Algorithm::HS256,
                EncodingKey::from_secret(s),
                DecodingKey::from_secret(long)
            )),
            "invalid_config",
            "new, short encoding key {s:?}"
        );
        assert_eq!(
            code(Keys::new(
                Algorithm::HS256,
                EncodingKey::from_secret(long),
                DecodingKey::from_secret(s)
            )),
            "invalid_config",
            "new, short decoding key {s:?}"
        );
        assert_eq!(
            code(Keys::verify_only(
                Algorithm::HS256,
                DecodingKey::from_secret(s)
            )),
            "invalid_config",
            "verify_only {s:?}"
        );
        assert_eq!(
            code(
                Keys::hmac(Algorithm::HS256, long)
                    .unwrap()
                    .with_verifying_key("old", Algorithm::HS256, DecodingKey::from_secret(s))
            ),
            "invalid_config",
            "with_verifying_key {s:?}"
        );
    }
    // The bound follows the algorithm: 32 bytes are too few for HS384/HS512.
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        assert!(Keys::verify_only(alg, DecodingKey::from_secret(long)).is_err());
        assert!(
            Keys::new(
                alg,
                EncodingKey::from_secret(long),
                DecodingKey::from_secret(long)
            )
            .is_err()
        );
    }
    let long64 = [7u8; 64];
    assert!(Keys::verify_only(Algorithm::HS512, DecodingKey::from_secret(&long64)).is_ok());
    // Other constructors of HMAC keys: base64 and JWK `oct`.
    assert!(
        Keys::verify_only(
            Algorithm::HS256,
            DecodingKey::from_base64_secret("").unwrap()
        )
        .is_err()
    );
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(json!({"kty": "oct", "k": "c2hvcnQ"})).unwrap();
    assert!(Keys::verify_only(Algorithm::HS256, DecodingKey::from_jwk(&jwk).unwrap()).is_err());
    assert!(
        Keys::new(
            Algorithm::HS256,
            EncodingKey::from_base64_secret("").unwrap(),
            DecodingKey::from_secret(long)
        )
        .is_err()
    );
    // End to end: a token signed with the empty secret is refused by a guard
    // over a valid key, and no guard can be configured with the empty one.
    // (Building the guard first installs the crypto provider.)
    let g = hs256_guard();
    let msg = format!("{}.{}", b64(HS), b64(&claims(json!({}))));
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &EncodingKey::from_secret(b""),
        Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(code(&g, &format!("{msg}.{sig}")).await, "invalid_signature");
}
