//! Revocable JWT access tokens without storing tokens.
//!
//! Every token carries `sub`, `iat`, `exp` and `ver` (the subject's token
//! version when it was issued). Each subject has a [`Cutoff`] in the host
//! application's own database, behind the [`CutoffStore`] trait. A token is
//! revoked when
//!
//! ```text
//! token.ver < cutoff.version  OR  token.iat < cutoff.not_before  OR  token.iat < global.not_before
//! ```
//!
//! so "log out everywhere", a password change or an account lock is one
//! write to one row ([`Guard::bump_version`]) and takes effect on the next
//! request. The [`Guard`] caches cutoffs in a concurrent map, so a validation
//! costs a signature check plus a map lookup.
//!
//! # Example
//!
//! ```
//! use jwt_revoke::{Algorithm, Cutoff, Error, Guard, Keys, MemoryStore, RevokedReason};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! store.insert("alice", Cutoff::default()); // a registered user
//!
//! let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
//! let guard = Guard::builder(keys, store).build().unwrap();
//!
//! let token = guard.issue("alice", &()).await.unwrap();
//! let verified = guard.validate::<()>(&token).await.unwrap();
//! assert_eq!(verified.sub(), "alice");
//!
//! // Log out everywhere: every token issued so far stops working at once.
//! guard.bump_version("alice").await.unwrap();
//! let err = guard.validate::<()>(&token).await.unwrap_err();
//! assert!(matches!(err, Error::Revoked(RevokedReason::Version)));
//! assert_eq!(err.code(), "token_revoked");
//!
//! // A fresh login gets the new version and is accepted.
//! let token = guard.issue("alice", &()).await.unwrap();
//! assert!(guard.validate::<()>(&token).await.is_ok());
//! # });
//! ```
//!
//! # Guarantees
//! - **Same instance, immediate**: after `bump_version`/`revoke_before`
//!   returns, the guard that made the call rejects every older token.
//! - **Other instances, bounded**: within the cache TTL (default 30 s), or
//!   within milliseconds with an invalidation [`Publisher`].
//! - **Fail closed**: a cache miss while the store is down is
//!   [`Error::StoreUnavailable`] (503), unless stale-if-error is enabled.
//! - **State is O(subjects + sessions)**: no token is ever stored.
//!
//! # Pieces
//! - Sessions and refresh tokens ([`session`]): `Guard::login` per device,
//!   `Guard::refresh` with rotation and reuse detection,
//!   `Guard::revoke_session` to log out one device, behind
//!   [`SessionStore`] (implemented by every shipped store).
//! - Stores: [`MemoryStore`]; `SqliteStore`, `PostgresStore`, `RedisStore`
//!   behind the `sqlite`, `postgres`, `redis` features; `SqliteUsersStore`
//!   and `PostgresUsersStore` over two columns of your own users table
//!   (`stores::users`); or implement [`CutoffStore`] over your own tables.
//! - Web frameworks: `integrations::tower::RevokeLayer` with
//!   `integrations::axum::Authenticated` (features `tower`, `axum`), and
//!   `integrations::actix` (feature `actix`).
//! - Many instances: `invalidation::redis` and `invalidation::postgres`
//!   publish revocations and keep other instances' caches current.
//!
//! # Crypto backend
//! jsonwebtoken needs exactly one backend. The default feature `rust_crypto`
//! is pure Rust; `aws_lc_rs` is faster for RSA/ECDSA but needs a C toolchain.
//! If both are enabled, the guard installs aws-lc-rs as the process provider.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bus;
mod cache;
mod claims;
mod clock;
mod cutoff;
mod error;
mod guard;
#[cfg(any(feature = "tower", feature = "actix"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "actix"))))]
pub mod integrations;
#[cfg(any(feature = "redis", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub mod invalidation;
mod keys;
pub mod metrics;
pub mod refresh;
pub mod session;
pub mod store;
pub mod stores;
mod verified;

pub use bus::{BoxFuture, CutoffEvent, Publisher};
pub use claims::Verified;
pub use clock::{Clock, FakeClock, SystemClock};
pub use cutoff::{Cutoff, RevokedReason};
pub use error::Error;
pub use guard::{DEFAULT_MAX_TOKEN_BYTES, Guard, GuardBuilder};
pub use keys::Keys;
pub use refresh::RefreshKey;
pub use session::{Rotate, Rotation, Session, SessionConfig, SessionStore, SessionTokens};
pub use store::{CutoffStore, DynStore, StoreError};
pub use stores::memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use stores::postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use stores::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use stores::sqlite::SqliteStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use stores::users::PostgresUsersStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use stores::users::SqliteUsersStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use stores::users::{UserIds, UsersTable};

/// Re-exported from jsonwebtoken so callers need not depend on it directly.
pub use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// The sqlx this crate is built with (its pools appear in the public API of
/// the SQLite and PostgreSQL stores): use it instead of pinning the same
/// version yourself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;

/// The redis client this crate is built with (its `Client` and connection
/// types appear in the public API of the Redis store and bus).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis;
