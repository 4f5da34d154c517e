//! Invalidation over Redis pub/sub.
//!
//! ```no_run
//! use jwt_revoke::invalidation::redis::{RedisPublisher, spawn_subscriber};
//! use jwt_revoke::invalidation::SubscriberConfig;
//! use jwt_revoke::{Algorithm, Guard, Keys, RedisStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "redis://127.0.0.1:6379/";
//! let store = RedisStore::connect(url).await?;
//! let client = redis::Client::open(url)?;
//! let publisher = RedisPublisher::connect(&client, "jwt-revoke").await?;
//! let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
//! let guard = Guard::builder(keys, store).publisher(publisher).build()?;
//! let _subscriber = spawn_subscriber(guard.clone(), client, "jwt-revoke", SubscriberConfig::default());
//! # Ok(()) }
//! ```

use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use super::{Session, SubscriberConfig, SubscriberHandle, encode};
use crate::bus::{BoxFuture, CutoffEvent, Publisher};
use crate::guard::Guard;
use crate::store::{CutoffStore, StoreError};

/// Publishes cutoff events with `PUBLISH channel <json>`.
#[derive(Clone)]
pub struct RedisPublisher {
    conn: ConnectionManager,
    channel: String,
}

impl std::fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisPublisher {
    /// A publisher on its own reconnecting connection.
    pub async fn connect(
        client: &redis::Client,
        channel: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let conn = client
            .get_connection_manager()
            .await
            .map_err(StoreError::new)?;
        Ok(RedisPublisher {
            conn,
            channel: channel.into(),
        })
    }
}

impl Publisher for RedisPublisher {
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let payload = encode(event)?;
            let _receivers: i64 = redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(payload)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::new)?;
            Ok(())
        })
    }
}

/// Subscribes to `channel` on a dedicated connection and merges every event
/// into `guard`'s cache; reconnects with backoff (see the
/// [module documentation](super) for the staleness bound). Needs a Tokio
/// runtime.
pub fn spawn_subscriber<S: CutoffStore>(
    guard: Guard<S>,
    client: redis::Client,
    channel: impl Into<String>,
    config: SubscriberConfig,
) -> SubscriberHandle {
    let channel = channel.into();
    let (mut session, stats) = Session::new(guard, config);
    let task = tokio::spawn(async move {
        loop {
            if let Ok(mut pubsub) = client.get_async_pubsub().await
                && pubsub.subscribe(&channel).await.is_ok()
            {
                session.connected();
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    session.message(msg.get_payload_bytes());
                }
            }
            session.disconnected().await;
        }
    });
    SubscriberHandle { stats, task }
}
