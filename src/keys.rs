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
            verifying: vec![VerifyingKey {
                kid: None,
                alg,
                key: decoding,
            }],
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
            verifying: vec![VerifyingKey {
                kid: None,
                alg,
                key: decoding,
            }],
        })
    }

    /// Sets the `kid` of the signing key (stamped in the header of issued
    /// tokens) and of the verification key created with it.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        if let Some(first) = self.verifying.first_mut()
            && first.kid.is_none()
        {
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
        self.verifying.push(VerifyingKey {
            kid: Some(kid),
            alg,
            key: decoding,
        });
        Ok(self)
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
        match kid {
            Some(kid) => self
                .verifying
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or(Error::UnknownKey),
            None => {
                if let [only] = self.verifying.as_slice() {
                    return Ok(only);
                }
                let mut unnamed = self.verifying.iter().filter(|k| k.kid.is_none());
                match (unnamed.next(), unnamed.next()) {
                    (Some(k), None) => Ok(k),
                    _ => Err(Error::UnknownKey),
                }
            }
        }
    }
}
