//! Signing and verification keys, and the algorithm allow-list they imply.
//!
//! Every verification key is bound to exactly one [`Algorithm`] when it is
//! added, and that algorithm must belong to the key's family. A token whose
//! header names another algorithm is rejected before any cryptography runs,
//! which closes algorithm confusion (an HMAC check keyed with an RSA public
//! key) and `alg: none` by construction.
//!
//! HMAC secrets must be at least as long as the hash output (32, 48 or 64
//! bytes for `HS256`, `HS384`, `HS512`; RFC 7518 §3.2) on every path that
//! takes a key, not only [`Keys::hmac`]: [`Keys::new`],
//! [`Keys::verify_only`] and [`Keys::with_verifying_key`] read the secret of
//! a ready-made HMAC `EncodingKey` (`as_bytes`) or `DecodingKey`
//! (`try_get_as_bytes`) and refuse a short one, whichever constructor made
//! it (`from_secret`, `from_base64_secret`, `from_jwk` with an `oct` key).
//! An HMAC `DecodingKey` whose bytes cannot be read is refused too, so a key
//! of unknown length never verifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use crate::error::Error;

/// The key that signs new tokens.
struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: EncodingKey,
}

/// One key that verifies tokens, bound to one algorithm.
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    /// For an HMAC key: the MAC state after absorbing the key, so a
    /// verification costs the message only (jsonwebtoken keys the MAC anew,
    /// and allocates, on every call).
    mac: Option<PreKeyed>,
}

/// An HMAC state keyed once.
#[derive(Clone)]
enum PreKeyed {
    S256(Hmac<sha2::Sha256>),
    S384(Hmac<sha2::Sha384>),
    S512(Hmac<sha2::Sha512>),
}

impl PreKeyed {
    fn new(alg: Algorithm, key: &DecodingKey) -> Option<Self> {
        let secret = key.try_get_as_bytes().ok()?;
        Some(match alg {
            Algorithm::HS256 => PreKeyed::S256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => PreKeyed::S384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => PreKeyed::S512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }

    /// Constant-time comparison of the MAC of `message` with `tag`.
    fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + Clone>(m: &M, message: &[u8], tag: &[u8]) -> bool {
            let mut m = m.clone();
            m.update(message);
            let mac = m.finalize().into_bytes();
            // The length is public (it is the algorithm's); the bytes are
            // compared without an early exit: every byte's difference is
            // folded in, and the fold is hidden from the optimizer once,
            // at the end, instead of per byte.
            mac.len() == tag.len()
                && std::hint::black_box(
                    mac.iter().zip(tag).fold(0u8, |diff, (a, b)| diff | (a ^ b)),
                ) == 0
        }
        match self {
            PreKeyed::S256(m) => check(m, message, tag),
            PreKeyed::S384(m) => check(m, message, tag),
            PreKeyed::S512(m) => check(m, message, tag),
        }
    }
}

/// What a signature check found.
pub(crate) enum Signature {
    Valid,
    Invalid,
    /// The signature segment is not base64url without padding.
    NotBase64,
}

/// Longest HMAC signature segment decoded on the stack: 88 characters
/// decode to at most 66 bytes (an HS512 tag is 64). A longer one is
/// checked the general way (and can only be wrong).
const MAX_STACK_SIGNATURE: usize = 88;

impl VerifyingKey {
    fn new(kid: Option<String>, alg: Algorithm, key: DecodingKey) -> Self {
        let mac = PreKeyed::new(alg, &key);
        VerifyingKey { kid, alg, key, mac }
    }

    /// Checks the signature segment `signature` over `signed` with this
    /// key's algorithm. Same answers as `jsonwebtoken::crypto::verify`
    /// (same base64url rules, constant-time comparison).
    pub(crate) fn verify(&self, signature: &str, signed: &[u8]) -> Signature {
        if let Some(mac) = &self.mac
            && signature.len() <= MAX_STACK_SIGNATURE
        {
            let mut tag = [0u8; 66];
            return match URL_SAFE_NO_PAD.decode_slice(signature, &mut tag) {
                Ok(n) if mac.verify(signed, &tag[..n]) => Signature::Valid,
                Ok(_) | Err(base64::DecodeSliceError::OutputSliceTooSmall) => Signature::Invalid,
                Err(base64::DecodeSliceError::DecodeError(_)) => Signature::NotBase64,
            };
        }
        match jsonwebtoken::crypto::verify(signature, signed, &self.key, self.alg) {
            Ok(true) => Signature::Valid,
            Ok(false) => Signature::Invalid,
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::Base64(_) => Signature::NotBase64,
                _ => Signature::Invalid,
            },
        }
    }
}

/// The guard's key set: at most one signing key and any number of
/// verification keys, selected by the token's `kid` header.
///
/// Key rotation: add the new key with a `kid`, start signing with it, keep the
/// old verification key until the last token it signed has expired.
///
/// ```
/// use jwt_revoke::{Algorithm, DecodingKey, Keys};
///
/// let current = b"a new secret of at least 32 bytes!!";
/// let previous = b"the old secret, also 32 bytes long";
/// let keys = Keys::hmac(Algorithm::HS256, current)
///     .unwrap()
///     .with_kid("2026-11")
///     .with_verifying_key("2026-10", Algorithm::HS256, DecodingKey::from_secret(previous))
///     .unwrap();
/// assert!(keys.can_sign());
/// ```
///
/// `Debug` shows key ids and algorithms, never key material.
pub struct Keys {
    signing: Option<SigningKey>,
    verifying: Vec<VerifyingKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verifying: Vec<_> = self
            .verifying
            .iter()
            .map(|k| (k.kid.as_deref(), k.alg))
            .collect();
        f.debug_struct("Keys")
            .field(
                "signing",
                &self.signing.as_ref().map(|k| (k.kid.as_deref(), k.alg)),
            )
            .field("verifying", &verifying)
            .finish()
    }
}

fn check_family(alg: Algorithm, family: AlgorithmFamily) -> Result<(), Error> {
    if alg.family() == family {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "algorithm {alg:?} does not belong to the key's family {family:?}"
        )))
    }
}

/// Minimum HMAC secret length: the hash output size (RFC 7518 §3.2).
fn min_hmac_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

fn check_hmac_len(alg: Algorithm, len: usize) -> Result<(), Error> {
    if len < min_hmac_len(alg) {
        return Err(Error::Config(format!(
            "{alg:?} secret must be at least {} bytes",
            min_hmac_len(alg)
        )));
    }
    Ok(())
}

/// Family, and for HMAC the secret's length.
fn check_encoding(alg: Algorithm, key: &EncodingKey) -> Result<(), Error> {
    check_family(alg, key.family())?;
    if key.family() == AlgorithmFamily::Hmac {
        check_hmac_len(alg, key.as_bytes().len())?;
    }
    Ok(())
}

/// Family, and for HMAC the secret's length (a secret that cannot be read
/// is refused).
fn check_decoding(alg: Algorithm, key: &DecodingKey) -> Result<(), Error> {
    check_family(alg, key.family())?;
    if key.family() == AlgorithmFamily::Hmac {
        let secret = key
            .try_get_as_bytes()
            .map_err(|_| Error::Config(format!("{alg:?} key: the secret cannot be read")))?;
        check_hmac_len(alg, secret.len())?;
    }
    Ok(())
}

impl Keys {
    /// Signs and verifies with an HMAC secret (`HS256`, `HS384` or `HS512`).
    ///
    /// The secret must be at least as long as the hash output (32, 48 or 64
    /// bytes, RFC 7518 §3.2); a shorter one is a configuration error.
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Self, Error> {
        check_family(alg, AlgorithmFamily::Hmac)?;
        check_hmac_len(alg, secret.len())?;
        Self::new(
            alg,
            EncodingKey::from_secret(secret),
            DecodingKey::from_secret(secret),
        )
    }

    /// Signs with `encoding` and verifies with `decoding`, both for `alg`
    /// (e.g. an RSA private key and its public key for `RS256`). HMAC keys
    /// must meet the same minimum length as in [`Keys::hmac`].
    pub fn new(
        alg: Algorithm,
        encoding: EncodingKey,
        decoding: DecodingKey,
    ) -> Result<Self, Error> {
        check_encoding(alg, &encoding)?;
        check_decoding(alg, &decoding)?;
        Ok(Keys {
            signing: Some(SigningKey {
                kid: None,
                alg,
                key: encoding,
            }),
            verifying: vec![VerifyingKey::new(None, alg, decoding)],
        })
    }

    /// Verifies only: for tokens minted elsewhere (an identity provider).
    /// [`Guard::issue`](crate::Guard::issue) then fails with
    /// [`Error::Issue`]. An HMAC key must meet the minimum length of
    /// [`Keys::hmac`].
    pub fn verify_only(alg: Algorithm, decoding: DecodingKey) -> Result<Self, Error> {
        check_decoding(alg, &decoding)?;
        Ok(Keys {
            signing: None,
            verifying: vec![VerifyingKey::new(None, alg, decoding)],
        })
    }

    /// Sets the `kid` of the signing key (stamped in the header of issued
    /// tokens) and of the verification key created with it (the one the
    /// constructor made; called again, the last `kid` wins for both). A
    /// `kid` that another verification key already has is refused when the
    /// guard is built ([`Error::Config`]).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        if let Some(first) = self.verifying.first_mut() {
            first.kid = Some(kid.clone());
        }
        if let Some(signing) = &mut self.signing {
            signing.kid = Some(kid);
        }
        self
    }

    /// Adds a verification key for tokens whose header carries `kid`
    /// (rotation, or several identity-provider keys). An HMAC key must meet
    /// the minimum length of [`Keys::hmac`].
    pub fn with_verifying_key(
        mut self,
        kid: impl Into<String>,
        alg: Algorithm,
        decoding: DecodingKey,
    ) -> Result<Self, Error> {
        check_decoding(alg, &decoding)?;
        let kid = kid.into();
        if self
            .verifying
            .iter()
            .any(|k| k.kid.as_deref() == Some(&kid))
        {
            return Err(Error::Config(format!("duplicate key id {kid:?}")));
        }
        self.verifying
            .push(VerifyingKey::new(Some(kid), alg, decoding));
        Ok(self)
    }

    /// Refuses two verification keys with one `kid`: the second could never
    /// verify anything.
    pub(crate) fn check(&self) -> Result<(), Error> {
        for (i, k) in self.verifying.iter().enumerate() {
            if let Some(kid) = &k.kid
                && self.verifying[..i]
                    .iter()
                    .any(|o| o.kid.as_deref() == Some(kid))
            {
                return Err(Error::Config(format!("duplicate key id {kid:?}")));
            }
        }
        Ok(())
    }

    /// `true` when a signing key is configured.
    pub fn can_sign(&self) -> bool {
        self.signing.is_some()
    }

    pub(crate) fn signing(&self) -> Option<(Option<&str>, Algorithm, &EncodingKey)> {
        self.signing
            .as_ref()
            .map(|k| (k.kid.as_deref(), k.alg, &k.key))
    }

    /// Picks the verification key for a token header. With a `kid`, the key
    /// with that id; without, the only key without an id (or the only key).
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyingKey, Error> {
        self.select_index(kid).map(|i| &self.verifying[i])
    }

    /// The position of the key [`Keys::select`] picks.
    fn select_index(&self, kid: Option<&str>) -> Result<usize, Error> {
        match kid {
            Some(kid) => self
                .verifying
                .iter()
                .position(|k| k.kid.as_deref() == Some(kid))
                .ok_or(Error::UnknownKey),
            None => {
                if self.verifying.len() == 1 {
                    return Ok(0);
                }
                let mut unnamed = self
                    .verifying
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.kid.is_none());
                match (unnamed.next(), unnamed.next()) {
                    (Some((i, _)), None) => Ok(i),
                    _ => Err(Error::UnknownKey),
                }
            }
        }
    }

    /// The key at a position [`Keys::own_header`] returned.
    pub(crate) fn key_at(&self, index: usize) -> Option<&VerifyingKey> {
        self.verifying.get(index)
    }

    /// The header segment of the tokens this key set signs (what
    /// `jsonwebtoken::encode` writes for the signing key's algorithm and
    /// `kid`), with the position of the key that verifies it, when that key
    /// is of the same algorithm. The guard recognises exactly these bytes
    /// without parsing them again; any other header takes the full path.
    pub(crate) fn own_header(&self) -> Option<(String, usize)> {
        let signing = self.signing.as_ref()?;
        let mut header = jsonwebtoken::Header::new(signing.alg);
        header.kid = signing.kid.clone();
        let segment = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        let index = self.select_index(signing.kid.as_deref()).ok()?;
        (self.verifying[index].alg == signing.alg).then_some((segment, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer of jsonwebtoken's own check, in our terms.
    fn reference(key: &VerifyingKey, signature: &str, signed: &[u8]) -> &'static str {
        match jsonwebtoken::crypto::verify(signature, signed, &key.key, key.alg) {
            Ok(true) => "valid",
            Ok(false) => "invalid",
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::Base64(_) => "not_base64",
                _ => "invalid",
            },
        }
    }

    fn ours(key: &VerifyingKey, signature: &str, signed: &[u8]) -> &'static str {
        match key.verify(signature, signed) {
            Signature::Valid => "valid",
            Signature::Invalid => "invalid",
            Signature::NotBase64 => "not_base64",
        }
    }

    /// Building a guard installs the crypto provider (needed when both
    /// backends are on) before the tests call jsonwebtoken directly.
    fn install_provider() {
        let _ = crate::Guard::builder(
            Keys::hmac(Algorithm::HS256, &[7; 32]).unwrap(),
            crate::MemoryStore::new(),
        )
        .build();
    }

    #[test]
    fn the_pre_keyed_hmac_answers_as_jsonwebtoken_does() {
        install_provider();
        let signed = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0";
        for (alg, len) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let secret = vec![42u8; len];
            let key = VerifyingKey::new(None, alg, DecodingKey::from_secret(&secret));
            assert!(key.mac.is_some());
            let good = jsonwebtoken::crypto::sign(signed, &EncodingKey::from_secret(&secret), alg)
                .unwrap();
            let mut cases = vec![
                good.clone(),
                String::new(),
                format!("{good}="),
                format!("{good}A"),
                format!("{good}AA"),
                good[..good.len() - 1].to_owned(),
                good.replace('A', "B"),
                "!!!!".to_owned(),
                "A".repeat(86),
                "A".repeat(87),
                "A".repeat(88),
                "A".repeat(89),
                "A".repeat(200),
                format!("{good}{good}"),
            ];
            // The last character carries unused bits: every variant of it.
            for c in "AaBbCcDdQRSTgw_-+/".chars() {
                let mut s = good[..good.len() - 1].to_owned();
                s.push(c);
                cases.push(s);
            }
            for sig in &cases {
                assert_eq!(
                    ours(&key, sig, signed),
                    reference(&key, sig, signed),
                    "{alg:?} {sig:?}"
                );
            }
            assert_eq!(ours(&key, &good, signed), "valid");
        }
    }

    /// The comparison of the computed MAC with the presented tag: every
    /// single-bit change of any byte, and every shorter or longer tag, is
    /// refused.
    #[test]
    fn the_tag_comparison_refuses_every_changed_bit_and_length() {
        use base64::Engine;
        install_provider();
        let secret = [9u8; 32];
        let mac = PreKeyed::new(Algorithm::HS256, &DecodingKey::from_secret(&secret)).unwrap();
        let message = b"header.payload";
        let good = jsonwebtoken::crypto::sign(
            message,
            &EncodingKey::from_secret(&secret),
            Algorithm::HS256,
        )
        .unwrap();
        let tag = URL_SAFE_NO_PAD.decode(good).unwrap();
        assert!(mac.verify(message, &tag));
        for i in 0..tag.len() {
            for bit in 0..8 {
                let mut bad = tag.clone();
                bad[i] ^= 1 << bit;
                assert!(!mac.verify(message, &bad), "byte {i} bit {bit}");
            }
        }
        for len in 0..tag.len() {
            assert!(!mac.verify(message, &tag[..len]), "a {len}-byte prefix");
        }
        let mut longer = tag.clone();
        longer.push(0);
        assert!(!mac.verify(message, &longer));
    }

    #[test]
    fn the_own_header_is_what_issue_writes() {
        install_provider();
        let keys = Keys::hmac(Algorithm::HS384, &[1; 48])
            .unwrap()
            .with_kid("k1");
        let (segment, index) = keys.own_header().unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::HS384);
        header.kid = Some("k1".into());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "a"}),
            &EncodingKey::from_secret(&[1; 48]),
        )
        .unwrap();
        assert_eq!(token.split('.').next(), Some(segment.as_str()));
        assert_eq!(index, 0);
        // Verify-only keys sign nothing: no own header.
        let verify_only =
            Keys::verify_only(Algorithm::HS256, DecodingKey::from_secret(&[2; 32])).unwrap();
        assert!(verify_only.own_header().is_none());
    }
}
