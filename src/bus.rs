//! Cross-instance invalidation: telling other guards about a revocation.
//!
//! Without a bus, a revocation made on one instance reaches the others when
//! their cache entry for the subject expires (at most the cache TTL). With a
//! [`Publisher`] configured, the guard publishes a [`CutoffEvent`] after each
//! revocation; subscribers on the other instances pass received events to
//! [`Guard::apply_event`](crate::Guard::apply_event), which only raises what
//! is already cached (a remote event is a floor: an old, duplicated or
//! replayed event never rolls a cutoff back nor makes an entry fresh).
//!
//! The wire format and the trust model are documented on the public
//! [`invalidation`](crate::invalidation) module.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::cutoff::Cutoff;
use crate::store::StoreError;

/// A cutoff change, as sent between instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CutoffEvent {
    /// A subject's cutoff after a `bump_version` or `revoke_before`.
    Subject {
        /// The subject.
        sub: String,
        /// Its cutoff as returned by the store.
        cutoff: Cutoff,
    },
    /// The global `not_before` after a `revoke_all_before`.
    Global {
        /// The new global `not_before`.
        not_before: i64,
    },
    /// One session of a subject was revoked (logout of one device, a
    /// revocation by id, or a refresh-token reuse).
    Session {
        /// The subject the session belongs to.
        sub: String,
        /// The session id.
        sid: String,
    },
}

/// A boxed future, for the object-safe [`Publisher`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends cutoff changes to the other instances (Redis pub/sub, PostgreSQL
/// `NOTIFY`, …). Called by the guard after the store write and the local
/// cache update, so a failed publish never loses the revocation: the store
/// holds it, and other instances see it within their cache TTL.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one event.
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The authenticated wire format (only built with a bus feature).
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) mod wire {
    use std::fmt;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    use serde::{Deserialize, Serialize};
    use sha2::Sha256;

    use super::CutoffEvent;
    use crate::cutoff::Cutoff;
    use crate::store::StoreError;

    /// The largest message a bus publisher sends or a subscriber accepts, in
    /// bytes (8 KiB). Larger messages are counted as malformed and dropped
    /// without being authenticated or parsed.
    pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

    /// The version prefix of the current wire format.
    const PREFIX: &str = "jr2.";
    /// Domain separation for the MAC input.
    const MAC_CONTEXT: &[u8] = b"jwt-revoke bus v2";
    /// Length of an unpadded base64url HMAC-SHA256.
    const MAC_B64_LEN: usize = 43;

    /// The shared secret that authenticates invalidation-bus messages
    /// (HMAC-SHA256). Every publisher and subscriber on one channel needs the
    /// same key; use a random key of its own (not the JWT signing key), at least
    /// [`BusKey::MIN_LEN`] bytes. Its `Debug` output is redacted.
    #[derive(Clone)]
    pub struct BusKey {
        mac: Hmac<Sha256>,
    }

    impl BusKey {
        /// The shortest key accepted, in bytes.
        pub const MIN_LEN: usize = 32;

        /// A key from raw bytes; fails when shorter than [`BusKey::MIN_LEN`].
        pub fn from_bytes(bytes: impl AsRef<[u8]>) -> Result<Self, BusConfigError> {
            let bytes = bytes.as_ref();
            if bytes.len() < Self::MIN_LEN {
                return Err(BusConfigError::KeyTooShort { len: bytes.len() });
            }
            let mac = Hmac::<Sha256>::new_from_slice(bytes)
                .map_err(|_| BusConfigError::KeyTooShort { len: bytes.len() })?;
            Ok(BusKey { mac })
        }

        fn mac_for(&self, channel: &str, body: &[u8]) -> Hmac<Sha256> {
            let mut mac = self.mac.clone();
            mac.update(MAC_CONTEXT);
            mac.update(&[0]);
            mac.update(channel.as_bytes());
            mac.update(&[0]);
            mac.update(body);
            mac
        }
    }

    impl fmt::Debug for BusKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("BusKey(<redacted>)")
        }
    }

    /// A bus set up wrongly: refused at construction rather than failing (or
    /// silently misbehaving) later.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum BusConfigError {
        /// The [`BusKey`] is shorter than [`BusKey::MIN_LEN`].
        #[error("bus key of {len} bytes is shorter than the 32-byte minimum")]
        KeyTooShort {
            /// Its length in bytes.
            len: usize,
        },
        /// The channel name cannot be used on this bus.
        #[error("invalid bus channel name: {reason}")]
        InvalidChannel {
            /// Why.
            reason: &'static str,
        },
        /// Inconsistent [`SubscriberConfig`](crate::invalidation::SubscriberConfig)
        /// values.
        #[error("invalid subscriber configuration: {reason}")]
        InvalidConfig {
            /// Why.
            reason: &'static str,
        },
    }

    /// Checks a channel name common to every bus: not empty, no control
    /// characters.
    pub(crate) fn check_channel(channel: &str) -> Result<(), BusConfigError> {
        if channel.is_empty() {
            return Err(BusConfigError::InvalidChannel { reason: "empty" });
        }
        if channel.chars().any(char::is_control) {
            return Err(BusConfigError::InvalidChannel {
                reason: "contains a control character",
            });
        }
        Ok(())
    }

    /// The body of a bus message.
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub(crate) enum Body {
        Subject { sub: String, cutoff: Cutoff },
        Global { not_before: i64 },
        Session { sub: String, sid: String },
        Heartbeat { from: String, seq: u64 },
    }

    /// What is authenticated: the publisher's send time (Unix milliseconds,
    /// field `at`) and the body.
    #[derive(Serialize)]
    struct SealedRef<'a> {
        at: i64,
        #[serde(flatten)]
        body: &'a Body,
    }

    /// A received message, as parsed.
    #[derive(Deserialize)]
    struct SealedOwned {
        at: i64,
        #[serde(flatten)]
        body: Body,
    }

    /// An authenticated, parsed message.
    #[derive(Debug)]
    pub(crate) struct Opened {
        /// The publisher's send time, Unix milliseconds.
        pub(crate) at_ms: i64,
        /// The body.
        pub(crate) body: Body,
        /// The message's MAC (unique per message: it covers the send time).
        pub(crate) tag: [u8; 32],
    }

    /// The wall clock in Unix milliseconds (0 before 1970).
    pub(crate) fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    impl Body {
        pub(crate) fn event(event: &CutoffEvent) -> Body {
            match event {
                CutoffEvent::Subject { sub, cutoff } => Body::Subject {
                    sub: sub.clone(),
                    cutoff: *cutoff,
                },
                CutoffEvent::Global { not_before } => Body::Global {
                    not_before: *not_before,
                },
                CutoffEvent::Session { sub, sid } => Body::Session {
                    sub: sub.clone(),
                    sid: sid.clone(),
                },
            }
        }
    }

    /// Why a received message was dropped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Rejected {
        /// No valid MAC (or an unknown format version).
        Unauthenticated,
        /// Oversized, or authenticated but not a valid body.
        Malformed,
    }

    /// Serializes and authenticates a message for `channel`, stamped with
    /// the current wall-clock time.
    pub(crate) fn seal(key: &BusKey, channel: &str, body: &Body) -> Result<String, StoreError> {
        let json =
            serde_json::to_string(&SealedRef { at: now_ms(), body }).map_err(StoreError::new)?;
        let tag = key
            .mac_for(channel, json.as_bytes())
            .finalize()
            .into_bytes();
        let mut out = String::with_capacity(PREFIX.len() + MAC_B64_LEN + 1 + json.len());
        out.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(tag, &mut out);
        out.push('.');
        out.push_str(&json);
        if out.len() > MAX_MESSAGE_BYTES {
            return Err(StoreError::msg(format!(
                "bus message of {} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Checks size, version and MAC (in constant time), then parses the body.
    pub(crate) fn open(key: &BusKey, channel: &str, payload: &[u8]) -> Result<Opened, Rejected> {
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(Rejected::Malformed);
        }
        let rest = payload
            .strip_prefix(PREFIX.as_bytes())
            .ok_or(Rejected::Unauthenticated)?;
        if rest.len() <= MAC_B64_LEN || rest[MAC_B64_LEN] != b'.' {
            return Err(Rejected::Unauthenticated);
        }
        let (tag, body) = (&rest[..MAC_B64_LEN], &rest[MAC_B64_LEN + 1..]);
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| Rejected::Unauthenticated)?;
        key.mac_for(channel, body)
            .verify_slice(&tag)
            .map_err(|_| Rejected::Unauthenticated)?;
        let tag: [u8; 32] = tag.try_into().map_err(|_| Rejected::Unauthenticated)?;
        let SealedOwned { at, body } =
            serde_json::from_slice(body).map_err(|_| Rejected::Malformed)?;
        Ok(Opened {
            at_ms: at,
            body,
            tag,
        })
    }
}
