//! Wire formats (header, registered claims) and the verified result.
//!
//! The payload is decoded once and parsed once into borrowed fields, so the
//! hot path does not allocate the subject to look up its cutoff. Registered
//! claims have strict types: `iat`, `exp` and `nbf` are non-negative integers
//! that fit in `i64`, `ver` a non-negative integer that fits in `u64`. A claim
//! of the wrong type is [`Error::Malformed`]; an absent (or `null`) `sub`,
//! `iat`, `exp` or `ver` is [`Error::MissingClaim`], while `nbf: null` is
//! malformed (jsonwebtoken refuses it when it checks `nbf`). Duplicate
//! registered claims are malformed.
//!
//! Parity with `jsonwebtoken::decode`: the guard never accepts a token that
//! jsonwebtoken (same key, equivalent `Validation`) rejects. Hence:
//!
//! - Every member of jsonwebtoken's `Header` is typed as it is there (strings,
//!   `x5c` an array of strings, `jwk` a JWK) and may appear once, although
//!   the guard only reads `alg`, `kid` and `crit`. The shape checks keep
//!   nothing ([`Str`], [`StrSeq`]); `jwk`, rare, is parsed as a JWK.
//! - Members the guard does not read (header and claims alike) are walked
//!   with [`Skip`], which asks serde_json for every value as a full parse
//!   into `serde_json::Value` does: strings are unescaped (a lone UTF-16
//!   surrogate escape such as `"\ud800"` is an error), numbers are converted
//!   (`1e400` is out of range), and nesting counts against serde_json's depth
//!   limit. `serde::de::IgnoredAny` checks none of these. Nothing is
//!   allocated: strings without escapes are borrowed, others go through
//!   serde_json's scratch buffer.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Error;

/// A JSON value the guard does not use, checked as strictly as a parse into
/// `serde_json::Value` checks it (see the module docs), and dropped.
pub(crate) struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// A string member the guard does not read: must be a string (or `null`,
/// through `Option`), not kept.
struct Str;

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Str, E> {
                Ok(Str)
            }
        }
        d.deserialize_str(V)
    }
}

/// `x5c`: an array of strings, not kept.
struct StrSeq;

impl<'de> Deserialize<'de> for StrSeq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrSeq;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrSeq, A::Error> {
                while seq.next_element::<Str>()?.is_some() {}
                Ok(StrSeq)
            }
        }
        d.deserialize_seq(V)
    }
}

/// A string borrowed from the input when it has no escapes (what
/// `#[serde(borrow)]` does for `Cow<str>` in derived structs).
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn cow(v: Option<CowStr<'_>>) -> Option<Cow<'_, str>> {
    v.map(|s| s.0)
}

/// Marks a member as seen; a second sighting is an error (as in derived
/// structs, `null` counts as present).
fn once<E: de::Error>(seen: &mut u32, bit: u32, name: &'static str) -> Result<(), E> {
    if *seen & bit != 0 {
        return Err(E::duplicate_field(name));
    }
    *seen |= bit;
    Ok(())
}

/// Header member names: those of jsonwebtoken 11.1's `Header` (src/header.rs).
#[derive(Clone, Copy)]
enum HeaderField {
    Alg,
    Kid,
    Crit,
    /// `typ`, `cty`, `jku`, `x5u`, `x5t`, `x5t#S256`, `enc`, `zip`, `url`,
    /// `nonce`: strings.
    Str(u32, &'static str),
    X5c,
    Jwk,
    Other,
}

impl<'de> Deserialize<'de> for HeaderField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HeaderField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HeaderField, E> {
                Ok(match v {
                    "alg" => HeaderField::Alg,
                    "kid" => HeaderField::Kid,
                    "crit" => HeaderField::Crit,
                    "x5c" => HeaderField::X5c,
                    "jwk" => HeaderField::Jwk,
                    "typ" => HeaderField::Str(1 << 6, "typ"),
                    "cty" => HeaderField::Str(1 << 7, "cty"),
                    "jku" => HeaderField::Str(1 << 8, "jku"),
                    "x5u" => HeaderField::Str(1 << 9, "x5u"),
                    "x5t" => HeaderField::Str(1 << 10, "x5t"),
                    "x5t#S256" => HeaderField::Str(1 << 11, "x5t#S256"),
                    "enc" => HeaderField::Str(1 << 12, "enc"),
                    "zip" => HeaderField::Str(1 << 13, "zip"),
                    "url" => HeaderField::Str(1 << 14, "url"),
                    "nonce" => HeaderField::Str(1 << 15, "nonce"),
                    _ => HeaderField::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// The JOSE header fields the guard reads. The other members of
/// jsonwebtoken's `Header` are checked for type and uniqueness, unknown
/// members are walked with [`Skip`] (see the module docs).
pub(crate) struct WireHeader<'a> {
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) crit: Option<IgnoredAny>,
}

impl<'de> Deserialize<'de> for WireHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireHeader<'de>, A::Error> {
                let mut seen = 0u32;
                let mut h = WireHeader {
                    alg: None,
                    kid: None,
                    crit: None,
                };
                while let Some(field) = map.next_key::<HeaderField>()? {
                    match field {
                        HeaderField::Alg => {
                            once::<A::Error>(&mut seen, 1, "alg")?;
                            h.alg = cow(map.next_value()?);
                        }
                        HeaderField::Kid => {
                            once::<A::Error>(&mut seen, 1 << 1, "kid")?;
                            h.kid = cow(map.next_value()?);
                        }
                        HeaderField::Crit => {
                            // Any non-null `crit` is refused after parsing.
                            once::<A::Error>(&mut seen, 1 << 2, "crit")?;
                            h.crit = map.next_value()?;
                        }
                        HeaderField::X5c => {
                            once::<A::Error>(&mut seen, 1 << 3, "x5c")?;
                            map.next_value::<Option<StrSeq>>()?;
                        }
                        HeaderField::Jwk => {
                            once::<A::Error>(&mut seen, 1 << 4, "jwk")?;
                            map.next_value::<Option<jsonwebtoken::jwk::Jwk>>()?;
                        }
                        HeaderField::Str(bit, name) => {
                            once::<A::Error>(&mut seen, bit, name)?;
                            map.next_value::<Option<Str>>()?;
                        }
                        HeaderField::Other => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
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
/// tokens issued by this library and [`Skip`] for foreign tokens, whose
/// `ver` (if any) means something else (e.g. `"2.0"` from some providers).
/// Other claims are walked with [`Skip`].
pub(crate) struct WireClaims<'a, V> {
    pub(crate) sub: Option<Cow<'a, str>>,
    pub(crate) iat: Option<u64>,
    pub(crate) exp: Option<u64>,
    /// `Some` when present; `null` is malformed.
    pub(crate) nbf: Option<u64>,
    pub(crate) ver: Option<V>,
    pub(crate) iss: Option<Cow<'a, str>>,
    pub(crate) aud: Option<Audience<'a>>,
    /// The session id of a token minted for a session (see
    /// [`crate::session`]); must be a string when present.
    pub(crate) sid: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy)]
enum ClaimField {
    Sub,
    Iat,
    Exp,
    Nbf,
    Ver,
    Iss,
    Aud,
    Sid,
    Other,
}

impl<'de> Deserialize<'de> for ClaimField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ClaimField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClaimField, E> {
                Ok(match v {
                    "sub" => ClaimField::Sub,
                    "iat" => ClaimField::Iat,
                    "exp" => ClaimField::Exp,
                    "nbf" => ClaimField::Nbf,
                    "ver" => ClaimField::Ver,
                    "iss" => ClaimField::Iss,
                    "aud" => ClaimField::Aud,
                    "sid" => ClaimField::Sid,
                    _ => ClaimField::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<V> WireClaims<'_, V> {
    /// No claim read yet.
    pub(crate) fn empty() -> Self {
        WireClaims {
            sub: None,
            iat: None,
            exp: None,
            nbf: None,
            ver: None,
            iss: None,
            aud: None,
            sid: None,
        }
    }
}

/// Reads a claims object into a [`WireClaims`] the caller owns (the
/// struct is not moved through the deserializer's layers).
struct Fill<'c, 'de, V>(&'c mut WireClaims<'de, V>);

impl<'de, V: Deserialize<'de>> de::DeserializeSeed<'de> for Fill<'_, 'de, V> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, V: Deserialize<'de>> Visitor<'de> for Fill<'_, 'de, V> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.0;
        let mut seen = 0u32;
        while let Some(field) = map.next_key::<ClaimField>()? {
            match field {
                ClaimField::Sub => {
                    once::<A::Error>(&mut seen, 1, "sub")?;
                    c.sub = cow(map.next_value()?);
                }
                ClaimField::Iat => {
                    once::<A::Error>(&mut seen, 1 << 1, "iat")?;
                    c.iat = map.next_value()?;
                }
                ClaimField::Exp => {
                    once::<A::Error>(&mut seen, 1 << 2, "exp")?;
                    c.exp = map.next_value()?;
                }
                ClaimField::Nbf => {
                    once::<A::Error>(&mut seen, 1 << 3, "nbf")?;
                    c.nbf = Some(map.next_value()?);
                }
                ClaimField::Ver => {
                    once::<A::Error>(&mut seen, 1 << 4, "ver")?;
                    c.ver = map.next_value()?;
                }
                ClaimField::Iss => {
                    once::<A::Error>(&mut seen, 1 << 5, "iss")?;
                    c.iss = cow(map.next_value()?);
                }
                ClaimField::Aud => {
                    once::<A::Error>(&mut seen, 1 << 6, "aud")?;
                    c.aud = map.next_value()?;
                }
                ClaimField::Sid => {
                    once::<A::Error>(&mut seen, 1 << 7, "sid")?;
                    c.sid = cow(map.next_value()?);
                }
                ClaimField::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(())
    }
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
/// object. UTF-8 is checked over the whole text (cheaply, and before any
/// parsing). RFC 7515 §4 and RFC 7519 §7.2 require objects; the parsers
/// below accept only maps as well (derived structs would also take a JSON
/// array, fields by position).
fn is_object(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && opens_object(bytes)
}

/// `true` when the first byte after JSON white space opens an object.
fn opens_object(bytes: &[u8]) -> bool {
    bytes
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

/// Reads the claims of `bytes` into `claims` (which must be
/// [`WireClaims::empty`]): the same rules as `serde_json::from_slice`,
/// trailing characters included.
pub(crate) fn parse_claims<'a, V: Deserialize<'a>>(
    bytes: &'a [u8],
    claims: &mut WireClaims<'a, V>,
) -> Result<(), Error> {
    use serde::de::DeserializeSeed;
    let malformed =
        || Error::Malformed("claims are not a JSON object with correctly typed registered claims");
    // No separate UTF-8 pass over the claims (unlike the header): the
    // parser validates every string it reads, and reads every one (keys,
    // values, and skipped members walked with `Skip`), a number or literal
    // given a string fails on its own, and bytes outside strings must be
    // JSON syntax, which is ASCII. Invalid UTF-8 anywhere is still refused.
    if !opens_object(bytes) {
        return Err(malformed());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Fill(claims)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|_| malformed())
}

/// The claims as this library writes them, read without the general
/// parser: an object of the members `sub`, `sid` (strings of printable
/// ASCII without escapes), `iat`, `exp`, `ver` (integers in canonical
/// decimal that fit a `u64`), each at most once, in any order, with no
/// white space. `ver` becomes `version(n)`. On anything else (another
/// member, white space, an escape, a sign, a fraction, an overflow ...) it
/// answers `false` and leaves `claims` as it was, and the caller takes the
/// general path. Every payload it reads, the general path reads to the
/// same values (tested against it), so it changes speed, never answers.
pub(crate) fn parse_canonical<'a, V>(
    bytes: &'a [u8],
    version: impl Fn(u64) -> V,
    claims: &mut WireClaims<'a, V>,
) -> bool {
    if bytes.first() != Some(&b'{') {
        return false;
    }
    let mut c = WireClaims::empty();
    let mut seen = 0u32;
    let mut i = 1;
    loop {
        let field = match bytes.get(i..i + 6) {
            Some(b"\"sub\":") => ClaimField::Sub,
            Some(b"\"sid\":") => ClaimField::Sid,
            Some(b"\"iat\":") => ClaimField::Iat,
            Some(b"\"exp\":") => ClaimField::Exp,
            Some(b"\"ver\":") => ClaimField::Ver,
            _ => return false,
        };
        // The same bit per member as the general parser's `once`.
        let bit = 1u32 << field as u32;
        if seen & bit != 0 {
            return false;
        }
        seen |= bit;
        i += 6;
        let end = match field {
            ClaimField::Sub | ClaimField::Sid => {
                let Some((text, end)) = canonical_str(bytes, i) else {
                    return false;
                };
                let text = Some(Cow::Borrowed(text));
                if matches!(field, ClaimField::Sub) {
                    c.sub = text;
                } else {
                    c.sid = text;
                }
                end
            }
            _ => {
                let Some((n, end)) = canonical_u64(bytes, i) else {
                    return false;
                };
                match field {
                    ClaimField::Iat => c.iat = Some(n),
                    ClaimField::Exp => c.exp = Some(n),
                    _ => c.ver = Some(version(n)),
                }
                end
            }
        };
        match bytes.get(end) {
            Some(b',') => i = end + 1,
            Some(b'}') if end + 1 == bytes.len() => {
                *claims = c;
                return true;
            }
            _ => return false,
        }
    }
}

/// A string of printable ASCII without escapes at `bytes[i]`: the text and
/// the index after its closing quote.
fn canonical_str(bytes: &[u8], i: usize) -> Option<(&str, usize)> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = bytes
        .get(start..)?
        .iter()
        .position(|b| !matches!(b, 0x20..=0x7e) || *b == b'"' || *b == b'\\')?;
    let end = start + len;
    if bytes[end] != b'"' {
        return None;
    }
    let text = std::str::from_utf8(&bytes[start..end]).ok()?;
    Some((text, end + 1))
}

/// An integer in canonical decimal (no sign, no leading zero) that fits a
/// `u64` at `bytes[i]`: the value and the index after its last digit.
fn canonical_u64(bytes: &[u8], i: usize) -> Option<(u64, usize)> {
    let digits = bytes.get(i..)?;
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || (len > 1 && digits[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for d in &digits[..len] {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((n, i + len))
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
pub(crate) const RESERVED: &[&str] = &[
    "sub", "iat", "exp", "nbf", "ver", "iss", "aud", "jti", "sid",
];

/// A token that passed every check: signature, registered claims, and the
/// subject's cutoffs. `C` holds the caller's own claims (`()` for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<C = ()> {
    pub(crate) sub: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) ver: Option<u64>,
    pub(crate) sid: Option<std::sync::Arc<str>>,
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

    /// The session id (`sid`) of a token minted for a session by
    /// [`Guard::login`](crate::Guard::login) or
    /// [`Guard::refresh`](crate::Guard::refresh); `None` for a token without
    /// one.
    pub fn session_id(&self) -> Option<&str> {
        self.sid.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Seen<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );

    fn fields<'a>(c: &'a WireClaims<'a, u64>) -> Seen<'a> {
        assert!(c.iss.is_none() && c.aud.is_none() && c.nbf.is_none());
        (c.sub.as_deref(), c.sid.as_deref(), c.iat, c.exp, c.ver)
    }

    /// `parse_canonical` either declines or reads exactly what the general
    /// parser reads.
    fn agrees(bytes: &[u8]) -> bool {
        let mut fast = WireClaims::<u64>::empty();
        if !parse_canonical(bytes, |n| n, &mut fast) {
            return false;
        }
        let mut full = WireClaims::<u64>::empty();
        parse_claims(bytes, &mut full).expect("the general parser accepts it too");
        assert_eq!(
            fields(&fast),
            fields(&full),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        true
    }

    #[test]
    fn what_issue_writes_takes_the_short_path() {
        for payload in [
            &br#"{"exp":1700000900,"iat":1700000000,"sub":"user-1","ver":0}"#[..],
            br#"{"exp":1,"iat":0,"sid":"QVswmHKfNkTA7Dx4YA86hA","sub":"a b~!","ver":18446744073709551615}"#,
            br#"{"sub":"x"}"#,
        ] {
            assert!(agrees(payload), "{}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn anything_else_takes_the_general_path() {
        for payload in [
            &br#"{}"#[..],
            br#" {"sub":"x"}"#,
            br#"{"sub":"x"} "#,
            br#"{"sub": "x"}"#,
            br#"{"sub":"x","sub":"y"}"#,
            br#"{"sub":"x\u0041"}"#,
            br#"{"sub":"x\"y"}"#,
            "{\"sub\":\"é\"}".as_bytes(),
            b"{\"sub\":\"x\x7f\"}",
            b"{\"sub\":\"x\x1f\"}",
            br#"{"iat":01}"#,
            br#"{"iat":-1}"#,
            br#"{"iat":1.0}"#,
            br#"{"iat":1e3}"#,
            br#"{"iat":18446744073709551616}"#,
            br#"{"iat":"1"}"#,
            br#"{"ver":null}"#,
            br#"{"nbf":1}"#,
            br#"{"iss":"x"}"#,
            br#"{"aud":"x"}"#,
            br#"{"x":1}"#,
            br#"{"sub":"x",}"#,
            br#"{"sub":"x""#,
            br#"{"sub":"x"}}"#,
            br#"{"sub":"x"},"#,
            br#"{"sub""#,
            br#"{"#,
            br#"{"sub":"#,
        ] {
            assert!(!agrees(payload), "{}", String::from_utf8_lossy(payload));
        }
    }

    fn member() -> impl Strategy<Value = (u8, String)> {
        prop_oneof![
            "[ -~]{0,12}".prop_map(|s| (0, s)),
            "[ -~]{0,12}".prop_map(|s| (1, s)),
            any::<u64>().prop_map(|n| (2, n.to_string())),
            any::<u64>().prop_map(|n| (3, n.to_string())),
            any::<u64>().prop_map(|n| (4, n.to_string())),
        ]
    }

    fn payload(members: &[(u8, String)]) -> Vec<u8> {
        let parts: Vec<String> = members
            .iter()
            .map(|(k, v)| match k {
                0 => format!("\"sub\":{}", serde_json::to_string(v).unwrap()),
                1 => format!("\"sid\":{}", serde_json::to_string(v).unwrap()),
                2 => format!("\"iat\":{v}"),
                3 => format!("\"exp\":{v}"),
                _ => format!("\"ver\":{v}"),
            })
            .collect();
        format!("{{{}}}", parts.join(",")).into_bytes()
    }

    proptest! {
        /// Random members in random order: whenever the short path reads a
        /// payload, it reads what the general parser reads; without
        /// duplicates or escapes it always reads it.
        #[test]
        fn the_short_path_agrees_with_the_general_one(
            members in proptest::collection::vec(member(), 1..7),
        ) {
            let bytes = payload(&members);
            let read = agrees(&bytes);
            let mut kinds: Vec<u8> = members.iter().map(|(k, _)| *k).collect();
            kinds.sort_unstable();
            kinds.dedup();
            let plain = members.iter().all(|(k, v)| *k > 1 || !v.contains(['"', '\\']));
            if kinds.len() == members.len() && plain {
                prop_assert!(read, "{}", String::from_utf8_lossy(&bytes));
            }
        }

        /// Any byte changed, inserted or removed: the short path declines
        /// or agrees.
        #[test]
        fn a_mutated_payload_never_reads_differently(
            members in proptest::collection::vec(member(), 1..6),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            how in 0u8..3,
        ) {
            let mut bytes = payload(&members);
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
            agrees(&bytes);
        }
    }
}
