//! Invalidation over PostgreSQL `LISTEN` / `NOTIFY`.
//!
//! ```no_run
//! use jwt_revoke::invalidation::postgres::{PgPublisher, spawn_subscriber};
//! use jwt_revoke::invalidation::SubscriberConfig;
//! use jwt_revoke::{Algorithm, Guard, Keys, PostgresStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "postgres://app@127.0.0.1/app";
//! let store = PostgresStore::connect(url).await?;
//! let publisher = PgPublisher::new(store.pool().clone(), "jwt_revoke");
//! let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
//! let guard = Guard::builder(keys, store).publisher(publisher).build()?;
//! let _subscriber = spawn_subscriber(guard.clone(), url, "jwt_revoke", SubscriberConfig::default());
//! # Ok(()) }
//! ```
//!
//! `NOTIFY` payloads are limited to 8000 bytes; an event for a longer
//! subject fails to publish (counted by the guard) and other instances see
//! the revocation within their cache TTL.

use sqlx::postgres::{PgListener, PgPool};

use super::{Session, SubscriberConfig, SubscriberHandle, encode};
use crate::bus::{BoxFuture, CutoffEvent, Publisher};
use crate::guard::Guard;
use crate::store::{CutoffStore, StoreError};

/// Publishes cutoff events with `pg_notify(channel, <json>)`.
#[derive(Debug, Clone)]
pub struct PgPublisher {
    pool: PgPool,
    channel: String,
}

impl PgPublisher {
    /// A publisher on `pool` (the store's pool will do).
    pub fn new(pool: PgPool, channel: impl Into<String>) -> Self {
        PgPublisher {
            pool,
            channel: channel.into(),
        }
    }
}

impl Publisher for PgPublisher {
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let payload = encode(event)?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(payload)
                .execute(&self.pool)
                .await
                .map_err(StoreError::new)?;
            Ok(())
        })
    }
}

/// Listens on `channel` over a dedicated connection to `url` and merges
/// every event into `guard`'s cache; reconnects with backoff (see the
/// [module documentation](super) for the staleness bound). Needs a Tokio
/// runtime.
pub fn spawn_subscriber<S: CutoffStore>(
    guard: Guard<S>,
    url: impl Into<String>,
    channel: impl Into<String>,
    config: SubscriberConfig,
) -> SubscriberHandle {
    let (url, channel) = (url.into(), channel.into());
    let (mut session, stats) = Session::new(guard, config);
    let task = tokio::spawn(async move {
        loop {
            if let Ok(mut listener) = PgListener::connect(&url).await
                && listener.listen(&channel).await.is_ok()
            {
                session.connected();
                // `try_recv` answers `Ok(None)` when the connection is lost;
                // reconnecting is handled here, with a fresh listener, so the
                // cache is cleared after every gap.
                while let Ok(Some(notification)) = listener.try_recv().await {
                    session.message(notification.payload().as_bytes());
                }
            }
            session.disconnected().await;
        }
    });
    SubscriberHandle { stats, task }
}
