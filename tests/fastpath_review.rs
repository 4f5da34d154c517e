//! Adversarial review of the short claims path (`parse_canonical`), the
//! dropped UTF-8 pass over the claims, the claims seed and the folded HMAC
//! tag comparison.
//!
//! The short path is reached only through `Guard::validate`, so it is
//! compared with the general parser metamorphically: a payload and its
//! twin with one leading space (JSON-equivalent; the short path declines
//! any white space) must get the same answer, values included. Every
//! verdict is also compared with `jsonwebtoken::decode::<Value>` (never
//! laxer), with the verified-token cache on and off (the hit must answer
//! like the miss), and an accepted payload must be valid UTF-8.
//!
//! Result of this round: no failing test. Every test here is an attack
//! that held (prefixed `held_`); they stay as regression tests.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use jwt_revoke::{Algorithm, Cutoff, EncodingKey, FakeClock, Guard, Keys, MemoryStore};
use proptest::prelude::*;
use serde_json::Value;

const SECRET: &[u8] = b"fastpath review secret, 64 bytes long, for HS256 HS384 and HS512";

fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

static NOW: LazyLock<i64> = LazyLock::new(wall_now);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn store() -> MemoryStore {
    let s = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    s.insert("alice", Cutoff::default());
    s.insert("", Cutoff::default());
    s.insert("a\u{7f}", Cutoff::default());
    s
}

fn guard_with(alg: Algorithm, foreign: bool, cache: usize) -> Guard<MemoryStore> {
    Guard::builder(Keys::hmac(alg, SECRET).unwrap(), store())
        .clock(FakeClock::new(*NOW))
        .leeway(Duration::from_secs(60))
        .foreign_tokens(foreign)
        .verified_cache(cache)
        .build()
        .unwrap()
}

static PROVIDER: LazyLock<()> = LazyLock::new(|| {
    let _ = guard_with(Algorithm::HS256, false, 0);
});

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// HS256 over raw payload bytes.
fn signed(payload: &[u8]) -> String {
    signed_alg(HEADER, payload, Algorithm::HS256)
}

fn signed_alg(header: &[u8], payload: &[u8], alg: Algorithm) -> String {
    LazyLock::force(&PROVIDER);
    let message = format!("{}.{}", b64(header), b64(payload));
    let sig =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET), alg)
            .unwrap();
    format!("{message}.{sig}")
}

/// What a validation answered: the code, or every value it handed back.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Err(&'static str),
    Ok {
        sub: String,
        iat: i64,
        exp: i64,
        ver: Option<u64>,
        sid: Option<String>,
        claims: Value,
    },
}

async fn answer(g: &Guard<MemoryStore>, token: &str) -> Answer {
    match g.validate::<Value>(token).await {
        Ok(v) => Answer::Ok {
            sub: v.sub().to_owned(),
            iat: v.issued_at(),
            exp: v.expires_at(),
            ver: v.version(),
            sid: v.session_id().map(str::to_owned),
            claims: v.claims().clone(),
        },
        Err(e) => Answer::Err(e.code()),
    }
}

fn reference_accepts(token: &str) -> bool {
    LazyLock::force(&PROVIDER);
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 60;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(SECRET), &v).is_ok()
}

/// All the checks on one payload, in native and foreign mode. Returns the
/// native answer (cache off).
async fn judge(payload: &[u8]) -> Result<Answer, String> {
    let mut native = None;
    for foreign in [false, true] {
        let off = guard_with(Algorithm::HS256, foreign, 0);
        let on = guard_with(Algorithm::HS256, foreign, 1000);
        let token = signed(payload);
        let shown = String::from_utf8_lossy(payload).into_owned();
        let miss = answer(&off, &token).await;
        // Twin: one leading space, which the short path never takes.
        let mut twin = b" ".to_vec();
        twin.extend_from_slice(payload);
        let twin_answer = answer(&off, &signed(&twin)).await;
        if miss != twin_answer {
            return Err(format!(
                "short path vs general path (foreign={foreign}): {shown:?}: {miss:?} vs {twin_answer:?}"
            ));
        }
        // The same token read with no custom claims and with a struct:
        // only `invalid_claims` may tell them apart.
        let unit = off
            .validate::<()>(&token)
            .await
            .map(|_| ())
            .map_err(|e| e.code());
        let mine = on
            .validate::<Mine>(&token)
            .await
            .map(|_| ())
            .map_err(|e| e.code());
        let mine_hit = on
            .validate::<Mine>(&token)
            .await
            .map(|_| ())
            .map_err(|e| e.code());
        let mine_off = off
            .validate::<Mine>(&token)
            .await
            .map(|_| ())
            .map_err(|e| e.code());
        let expected = match &miss {
            Answer::Ok { .. } => Ok(()),
            Answer::Err(c) => Err(*c),
        };
        if unit != expected || mine != mine_off || mine_hit != mine_off {
            return Err(format!(
                "custom claims (foreign={foreign}): {shown:?}: Value {miss:?}, () {unit:?}, Mine off {mine_off:?}, on {mine:?}, hit {mine_hit:?}"
            ));
        }
        if mine_off.is_err() && mine_off != Err("invalid_claims") && mine_off != expected {
            return Err(format!(
                "custom claims changed the code: {shown:?}: {mine_off:?} vs {expected:?}"
            ));
        }
        let first = answer(&on, &token).await;
        let hit = answer(&on, &token).await;
        if first != miss || hit != miss {
            return Err(format!(
                "verified cache (foreign={foreign}): {shown:?}: off {miss:?}, first {first:?}, hit {hit:?}"
            ));
        }
        if let Answer::Ok { claims, .. } = &miss {
            if std::str::from_utf8(payload).is_err() {
                return Err(format!(
                    "accepted invalid UTF-8 (foreign={foreign}): {shown:?}"
                ));
            }
            if !reference_accepts(&token) {
                return Err(format!(
                    "accepted what jsonwebtoken rejects (foreign={foreign}): {shown:?}"
                ));
            }
            let parsed: Value = serde_json::from_slice(payload).unwrap();
            if &parsed != claims {
                return Err(format!("claims differ from serde_json's: {shown:?}"));
            }
        }
        if !foreign {
            native = Some(miss);
        }
    }
    Ok(native.unwrap())
}

/// A caller's claims type: `sub` read again, a defaulted optional field.
#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Mine {
    sub: String,
    #[serde(default)]
    x: Option<i64>,
}

fn canonical(members: &[(&str, String)]) -> Vec<u8> {
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!("{{{}}}", body.join(",")).into_bytes()
}

fn base_members() -> Vec<(&'static str, String)> {
    vec![
        ("exp", (*NOW + 600).to_string()),
        ("iat", NOW.to_string()),
        ("sub", "\"alice\"".into()),
        ("ver", "0".into()),
    ]
}

// ---------------------------------------------------------------------
// Attacks that held (these pass).
// ---------------------------------------------------------------------

/// HELD: what `issue` writes is accepted, answers as the general path,
/// and the hit answers as the miss, in both modes.
#[test]
fn held_issued_tokens_answer_the_same_on_both_paths() {
    rt().block_on(async {
        let got = judge(&canonical(&base_members())).await.unwrap();
        assert!(matches!(got, Answer::Ok { .. }), "{got:?}");
        // Any order, each registered member once.
        let mut m = base_members();
        m.reverse();
        judge(&canonical(&m)).await.unwrap();
    });
}

/// HELD: sub / sid edge values on the short path: empty, DEL (0x7F,
/// declined to the general path), every printable ASCII, very long
/// values close to `max_token_bytes`, the largest u64, leading zeros.
#[test]
fn held_short_path_edge_values_answer_as_the_general_path() {
    rt().block_on(async {
        let printable: String = (0x20u8..=0x7e)
            .filter(|b| *b != b'"' && *b != b'\\')
            .map(char::from)
            .collect();
        let long = "a".repeat(5000);
        let cases: Vec<Vec<(&str, String)>> = vec![
            vec![("sub", "\"\"".into())],
            vec![("sub", "\"a\u{7f}\"".into())],
            vec![("sub", format!("\"{printable}\""))],
            vec![("sub", format!("\"{long}\""))],
            vec![("sid", "\"\"".into())],
            vec![("sid", format!("\"{long}\""))],
            vec![("sid", format!("\"{printable}\""))],
            vec![("ver", u64::MAX.to_string())],
            vec![("ver", "18446744073709551616".into())],
            vec![("iat", (i64::MAX as u64 + 1).to_string())],
            vec![("exp", i64::MAX.to_string())],
            vec![("exp", u64::MAX.to_string())],
            vec![("iat", "0".into())],
            vec![("iat", "00".into())],
            vec![("ver", "01".into())],
            vec![("ver", "\"7\"".into())],
            vec![("ver", "null".into())],
            vec![("ver", "-0".into())],
            vec![("ver", "0.0".into())],
        ];
        for over in cases {
            let mut m = base_members();
            for (k, v) in over {
                if let Some(slot) = m.iter_mut().find(|(n, _)| *n == k) {
                    slot.1 = v;
                } else {
                    m.push((k, v));
                }
            }
            judge(&canonical(&m)).await.unwrap();
        }
        // A member missing, and none at all.
        for drop in ["sub", "iat", "exp", "ver"] {
            let m: Vec<_> = base_members()
                .into_iter()
                .filter(|(k, _)| *k != drop)
                .collect();
            judge(&canonical(&m)).await.unwrap();
        }
        judge(b"{}").await.unwrap();
    });
}

/// HELD: invalid UTF-8 where serde_json might skip it unchecked: keys,
/// nested keys, arrays, `aud`, numbers given as strings, a foreign
/// token's `ver` (skipped), `nbf`, escapes, overlong encodings, after the
/// closing brace, in a string after an escape, in an escaped key.
#[test]
fn held_invalid_utf8_is_never_accepted() {
    rt().block_on(async {
        let base = canonical(&base_members());
        let open = &base[..base.len() - 1];
        let tails: Vec<&[u8]> = vec![
            b",\"\xff\":1}",
            b",\"x\":\"\xff\"}",
            b",\"x\":\"\\n\xff\"}",
            b",\"x\":\"\\u0041\xc0\xaf\"}",
            b",\"\\u0078\xff\":1}",
            b",\"x\":{\"\xff\":[]}}",
            b",\"x\":[[[[\"\xed\xa0\x80\"]]]]}",
            b",\"aud\":\"\xff\"}",
            b",\"aud\":[\"\xff\"]}",
            b",\"aud\":{\"\xff\":1}}",
            b",\"iss\":\"\xff\"}",
            b",\"nbf\":\"\xff\"}",
            b",\"x\":\"\xf4\x90\x80\x80\"}",
            b",\"x\":\"\xe0\x80\x80\"}",
            b"}\xff",
            b"}\n\xff",
            b",\"x\":1\xff}",
            b",\"x\":tru\xff}",
            b",\"x\":\"\\ud800\"}",
            b",\"x\":\"\\udc00\\ud800\"}",
            b",\"\\ud800\":1}",
        ];
        for tail in tails {
            judge(&[open, tail].concat()).await.unwrap();
        }
        // A foreign token's `ver` as a string with invalid UTF-8, and a
        // native one's.
        for ver in [&b"\"2.\xff\""[..], b"[\"\xff\"]", b"{\"\xff\":1}"] {
            let p = [
                &br#"{"sub":"alice","iat":"#[..],
                NOW.to_string().as_bytes(),
                b",\"exp\":",
                (*NOW + 600).to_string().as_bytes(),
                b",\"ver\":",
                ver,
                b"}",
            ]
            .concat();
            judge(&p).await.unwrap();
        }
        // Invalid UTF-8 inside `sub` / `sid` at every position of the short
        // path's scan.
        for bad in [0x80u8, 0xc0, 0xff, 0x7f, 0x00, 0x1f] {
            for (k, v) in [("sub", "alice"), ("sid", "QVswmHKfNkTA7Dx4YA86hA")] {
                for at in 0..=v.len() {
                    let mut s = v.as_bytes().to_vec();
                    s.insert(at, bad);
                    let p = [
                        &b"{\""[..],
                        k.as_bytes(),
                        b"\":\"",
                        &s,
                        b"\",",
                        &canonical(&base_members())[1..],
                    ]
                    .concat();
                    judge(&p).await.unwrap();
                }
            }
        }
    });
}

/// HELD: HS384 / HS512 tags: every bit flip, every prefix, longer tags,
/// another algorithm's tag over the same input, all refused as
/// jsonwebtoken refuses them; the right tag accepted.
#[test]
fn held_hmac_tags_of_every_length_and_algorithm() {
    rt().block_on(async {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let g = guard_with(alg, false, 0);
            let header = format!(r#"{{"alg":"{alg:?}","typ":"JWT"}}"#);
            let token = signed_alg(header.as_bytes(), &canonical(&base_members()), alg);
            assert!(matches!(answer(&g, &token).await, Answer::Ok { .. }));
            let (msg, sig) = token.rsplit_once('.').unwrap();
            let tag = URL_SAFE_NO_PAD.decode(sig).unwrap();
            let mut bad_tags = Vec::new();
            for i in 0..tag.len() {
                for bit in 0..8 {
                    let mut t = tag.clone();
                    t[i] ^= 1 << bit;
                    bad_tags.push(t);
                }
            }
            for len in 0..tag.len() {
                bad_tags.push(tag[..len].to_vec());
            }
            for extra in 1..=34 {
                let mut t = tag.clone();
                t.extend(std::iter::repeat_n(0u8, extra));
                bad_tags.push(t);
            }
            for other in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                if other != alg {
                    let s = jsonwebtoken::crypto::sign(
                        msg.as_bytes(),
                        &EncodingKey::from_secret(SECRET),
                        other,
                    )
                    .unwrap();
                    let t = URL_SAFE_NO_PAD.decode(s).unwrap();
                    // The other algorithm's tag, and its prefix of our length.
                    bad_tags.push(t.clone());
                    bad_tags.push(t[..t.len().min(tag.len())].to_vec());
                    // Our tag with the other's tail appended.
                    let mut mix = tag.clone();
                    mix.extend_from_slice(&t);
                    bad_tags.push(mix);
                }
            }
            for t in bad_tags {
                let forged = format!("{msg}.{}", b64(&t));
                assert_eq!(
                    answer(&g, &forged).await,
                    Answer::Err("invalid_signature"),
                    "{alg:?}: a wrong tag of {} bytes must be refused",
                    t.len()
                );
            }
        }
    });
}

// ---------------------------------------------------------------------
// Random search: grammar-built and mutated payloads.
// ---------------------------------------------------------------------

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\"sub\"".to_vec()),
        Just(b"\"sid\"".to_vec()),
        Just(b"\"iat\"".to_vec()),
        Just(b"\"exp\"".to_vec()),
        Just(b"\"ver\"".to_vec()),
        Just(b"\"nbf\"".to_vec()),
        Just(b"\"iss\"".to_vec()),
        Just(b"\"aud\"".to_vec()),
        Just(b"\"x\"".to_vec()),
        Just(b"\"s\\u0075b\"".to_vec()),
        Just(b"\"\xff\"".to_vec()),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    let now = *NOW;
    prop_oneof![
        Just(b"\"alice\"".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b"\"a\\u0000\"".to_vec()),
        Just(b"\"\xff\"".to_vec()),
        Just(b"\"\\ud800\"".to_vec()),
        Just(b"\"\xc3\xa9\"".to_vec()),
        Just(now.to_string().into_bytes()),
        Just((now + 600).to_string().into_bytes()),
        Just(b"0".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"null".to_vec()),
        Just(b"true".to_vec()),
        Just(b"[\"alice\",\"\xff\"]".to_vec()),
        Just(b"{\"\xff\":[1,{\"y\":\"\xed\xa0\x80\"}]}".to_vec()),
        Just(b"\"7\"".to_vec()),
        "[ -~]{0,6}".prop_map(|s| serde_json::to_vec(&s).unwrap()),
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
    ]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec((key(), value()), 0..7),
        any::<bool>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..3),
    )
        .prop_map(|(extra, base, mutations)| {
            let mut members: Vec<(Vec<u8>, Vec<u8>)> = if base {
                base_members()
                    .into_iter()
                    .map(|(k, v)| (format!("\"{k}\"").into_bytes(), v.into_bytes()))
                    .collect()
            } else {
                Vec::new()
            };
            members.extend(extra);
            let mut out = b"{".to_vec();
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(k);
                out.push(b':');
                out.extend_from_slice(v);
            }
            out.push(b'}');
            for (at, byte, how) in mutations {
                let i = at.index(out.len());
                match how {
                    0 => out[i] = byte,
                    1 => out.insert(i, byte),
                    2 => {
                        out.remove(i);
                    }
                    _ => {}
                }
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// HELD (if it passes): random payloads get the same answer on the
    /// short and general path, with the cache on and off, never accepted
    /// with invalid UTF-8 or against jsonwebtoken.
    #[test]
    fn held_random_payloads_answer_alike(p in payload()) {
        let r = rt().block_on(judge(&p));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}
