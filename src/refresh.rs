//! Refresh tokens: an opaque, authenticated pointer to one generation of one
//! session. Nothing about a refresh token is stored; the store keeps one row
//! per session (see [`SessionStore`](crate::SessionStore)).
//!
//! # Format
//!
//! ```text
//! jrt1.<base64url(sub)>.<sid>.<generation>.<base64url(HMAC-SHA256)>
//! ```
//!
//! The MAC (keyed with the [`RefreshKey`]) covers everything before the last
//! dot. A refresh token has five dot-separated segments and starts with
//! `jrt1.`, so it can never be taken for a JWT (three segments), and an
//! access token can never be taken for a refresh token. The input of the MAC
//! contains four dots, so no JWT signing input (`header.payload`, one dot)
//! ever shares a MAC with it, even when the refresh key is the JWT secret.
//!
//! `sid` is 16 random bytes in base64url (22 characters); `generation` is a
//! decimal `u64` without leading zeros. Anything else is
//! [`Error::RefreshInvalid`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};

use crate::error::Error;

const PREFIX: &str = "jrt1";

/// Longest refresh token accepted before any parsing (a subject of up to
/// 1 KiB plus the fixed parts).
const MAX_REFRESH_TOKEN_BYTES: usize = 1_600;

/// The secret that authenticates refresh tokens (HMAC-SHA256), at least 32
/// bytes. It may be the JWT secret (the formats cannot be confused, see the
/// [module documentation](crate::refresh)); a separate key lets you rotate
/// one without the other. Never printed.
#[derive(Clone)]
pub struct RefreshKey {
    /// The MAC state after absorbing the key.
    mac: Hmac<sha2::Sha256>,
}

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(..)")
    }
}

impl RefreshKey {
    /// A key from a secret of at least 32 bytes.
    ///
    /// Errors: [`Error::Config`] for a shorter secret.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < 32 {
            return Err(Error::Config(
                "a refresh key needs at least 32 bytes".to_owned(),
            ));
        }
        let mac = Hmac::new_from_slice(secret)
            .map_err(|_| Error::Config("a refresh key cannot be used as an HMAC key".into()))?;
        Ok(RefreshKey { mac })
    }

    /// The MAC of `message`, base64url.
    fn mac(&self, message: &str) -> String {
        let mut m = self.mac.clone();
        m.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    }

    /// Constant-time check of a base64url MAC of `message`.
    fn verify(&self, message: &str, mac: &str) -> bool {
        // Only the canonical spelling (43 characters for 32 bytes): one
        // token, one string.
        if mac.len() != 43 {
            return false;
        }
        let mut tag = [0u8; 33];
        let Ok(n) = URL_SAFE_NO_PAD.decode_slice(mac, &mut tag) else {
            return false;
        };
        let mut m = self.mac.clone();
        m.update(message.as_bytes());
        m.verify_slice(&tag[..n]).is_ok()
    }
}

/// What a genuine refresh token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshClaims {
    pub(crate) sub: String,
    pub(crate) sid: String,
    pub(crate) generation: u64,
}

/// `true` for a session id as [`new_session_id`] makes them.
pub(crate) fn is_session_id(sid: &str) -> bool {
    sid.len() == 22
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD.decode(sid).is_ok_and(|b| b.len() == 16)
}

/// A new random session id: 16 bytes from the operating system, base64url.
pub(crate) fn new_session_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Issue(format!("no randomness for a session id: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn encode(
    key: &RefreshKey,
    sub: &str,
    sid: &str,
    generation: u64,
) -> Result<String, Error> {
    let body = format!(
        "{PREFIX}.{}.{sid}.{generation}",
        URL_SAFE_NO_PAD.encode(sub.as_bytes())
    );
    let mac = key.mac(&body);
    Ok(format!("{body}.{mac}"))
}

pub(crate) fn decode(key: &RefreshKey, token: &str) -> Result<RefreshClaims, Error> {
    if token.len() > MAX_REFRESH_TOKEN_BYTES {
        return Err(Error::RefreshInvalid);
    }
    let (body, mac) = token.rsplit_once('.').ok_or(Error::RefreshInvalid)?;
    // The MAC first: nothing unauthenticated is interpreted.
    if !key.verify(body, mac) {
        return Err(Error::RefreshInvalid);
    }
    let mut parts = body.split('.');
    let (Some(PREFIX), Some(sub), Some(sid), Some(generation), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Error::RefreshInvalid);
    };
    let sub = URL_SAFE_NO_PAD
        .decode(sub)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .ok_or(Error::RefreshInvalid)?;
    if !is_session_id(sid) {
        return Err(Error::RefreshInvalid);
    }
    let canonical = generation == "0" || !generation.starts_with('0');
    let generation: u64 = generation
        .parse()
        .ok()
        .filter(|_| canonical && generation.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Error::RefreshInvalid)?;
    Ok(RefreshClaims {
        sub,
        sid: sid.to_owned(),
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RefreshKey {
        RefreshKey::new(b"a refresh secret of at least 32 bytes").unwrap()
    }

    #[test]
    fn round_trip() {
        let sid = new_session_id().unwrap();
        assert!(is_session_id(&sid));
        let t = encode(&key(), "alice", &sid, 7).unwrap();
        assert!(t.starts_with("jrt1."));
        assert_eq!(
            decode(&key(), &t).unwrap(),
            RefreshClaims {
                sub: "alice".into(),
                sid,
                generation: 7
            }
        );
    }

    #[test]
    fn any_changed_byte_is_invalid() {
        let sid = new_session_id().unwrap();
        let t = encode(&key(), "alice", &sid, 3).unwrap();
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let Ok(s) = String::from_utf8(b) else {
                continue;
            };
            if s != t {
                assert!(
                    matches!(decode(&key(), &s), Err(Error::RefreshInvalid)),
                    "byte {i}"
                );
            }
        }
        let other = RefreshKey::new(b"another refresh secret of 32 bytes!!").unwrap();
        assert!(matches!(decode(&other, &t), Err(Error::RefreshInvalid)));
    }

    #[test]
    fn short_keys_and_garbage_are_refused() {
        assert!(matches!(RefreshKey::new(b"short"), Err(Error::Config(_))));
        for t in ["", ".", "jrt1", "a.b.c", &"x".repeat(10_000)] {
            assert!(matches!(decode(&key(), t), Err(Error::RefreshInvalid)));
        }
        assert_eq!(format!("{:?}", key()), "RefreshKey(..)");
    }
}
