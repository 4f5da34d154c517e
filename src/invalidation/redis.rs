//! Invalidation over Redis pub/sub.
//!
//! ```no_run
//! use jwt_revoke::invalidation::redis::{RedisPublisher, spawn_subscriber};
//! use jwt_revoke::invalidation::{BusKey, SubscriberConfig};
//! use jwt_revoke::{Algorithm, Guard, Keys, RedisStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "redis://127.0.0.1:6379/";
//! let store = RedisStore::connect(url).await?;
//! let client = redis::Client::open(url)?;
//! // A random secret of its own, shared by every instance (not the JWT key).
//! let bus_key = BusKey::from_bytes(b"another secret, 32 bytes or more")?;
//! let publisher = RedisPublisher::connect(&client, "jwt-revoke", bus_key.clone()).await?;
//! let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
//! let guard = Guard::builder(keys, store).publisher(publisher).build()?;
//! let _subscriber = spawn_subscriber(
//!     guard.clone(),
//!     client,
//!     "jwt-revoke",
//!     bus_key,
//!     SubscriberConfig::default(),
//! )?;
//! # Ok(()) }
//! ```
//!
//! Without ACLs every Redis client may `PUBLISH`: the MAC (see the
//! [`invalidation`](super) module) is what keeps forged events out. With ACLs,
//! give the application's user `PUBLISH`/`SUBSCRIBE` on its channel only.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;

use super::{
    DEFAULT_PUBLISH_TIMEOUT, Session, SubscriberConfig, SubscriberHandle, publish_with_retry,
};
use crate::bus::wire::{Body, BusConfigError, BusKey, check_channel, seal};
use crate::bus::{BoxFuture, CutoffEvent, Publisher};
use crate::guard::Guard;
use crate::store::{CutoffStore, StoreError};

/// Publishes authenticated cutoff events with `PUBLISH channel <message>`.
///
/// Each attempt has a deadline ([`RedisPublisher::with_timeout`], default
/// 1 s); a failed or late attempt is retried once on a new connection, so a
/// Redis restart does not lose the next revocation's event.
#[derive(Clone)]
pub struct RedisPublisher {
    client: redis::Client,
    conn: Arc<Mutex<Option<MultiplexedConnection>>>,
    channel: String,
    key: BusKey,
    timeout: Duration,
}

impl std::fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("channel", &self.channel)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisPublisher {
    /// A publisher on its own connection (reopened when it fails). Fails
    /// when the channel name is empty or holds control characters, or when
    /// Redis cannot be reached.
    pub async fn connect(
        client: &redis::Client,
        channel: impl Into<String>,
        key: BusKey,
    ) -> Result<Self, StoreError> {
        let channel = channel.into();
        check_channel(&channel).map_err(StoreError::new)?;
        let conn = tokio::time::timeout(
            DEFAULT_PUBLISH_TIMEOUT,
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| StoreError::msg("connecting to Redis timed out"))?
        .map_err(StoreError::new)?;
        Ok(RedisPublisher {
            client: client.clone(),
            conn: Arc::new(Mutex::new(Some(conn))),
            channel,
            key,
            timeout: DEFAULT_PUBLISH_TIMEOUT,
        })
    }

    /// Sets the deadline of each publish attempt (connecting included).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn attempt(&self, payload: &str, fresh: bool) -> Result<(), StoreError> {
        let current = if fresh {
            None
        } else {
            self.conn
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        let mut conn = match current {
            Some(conn) => conn,
            None => {
                let conn = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(StoreError::new)?;
                *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
                conn
            }
        };
        let _receivers: i64 = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::new)?;
        Ok(())
    }
}

impl Publisher for RedisPublisher {
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let payload = seal(&self.key, &self.channel, &Body::event(event))?;
            publish_with_retry(self.timeout, |fresh| self.attempt(&payload, fresh)).await
        })
    }
}

/// Subscribes to `channel` on a dedicated connection, publishes heartbeats
/// on a second one, and passes every authenticated event to `guard`;
/// reconnects with backoff when the subscription closes or goes silent (see
/// the [module documentation](super) for the staleness bound). Fails on an
/// invalid channel name or configuration. Needs a Tokio runtime.
pub fn spawn_subscriber<S: CutoffStore>(
    guard: Guard<S>,
    client: redis::Client,
    channel: impl Into<String>,
    key: BusKey,
    config: SubscriberConfig,
) -> Result<SubscriberHandle, BusConfigError> {
    let channel = channel.into();
    check_channel(&channel)?;
    let (mut session, stats) = Session::new(guard, channel, key, config)?;
    let task = tokio::spawn(async move {
        loop {
            let channel = session.channel().to_owned();
            let connect = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                let conn = client.get_multiplexed_async_connection().await?;
                Ok::<_, redis::RedisError>((pubsub.into_on_message(), conn))
            };
            if let Some((mut messages, conn)) = session.deadline(connect).await {
                let _heartbeats = session.spawn_heartbeats(move |message| {
                    let (mut conn, channel) = (conn.clone(), channel.clone());
                    async move {
                        let _receivers: i64 = redis::cmd("PUBLISH")
                            .arg(&channel)
                            .arg(message)
                            .query_async(&mut conn)
                            .await
                            .map_err(StoreError::new)?;
                        Ok(())
                    }
                });
                let mut deadline = session.next_deadline();
                // Ends when the connection closes or no heartbeat of ours
                // came back in time.
                while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, messages.next()).await {
                    if session.message(msg.get_payload_bytes()) {
                        deadline = session.next_deadline();
                    }
                }
            }
            session.disconnected().await;
        }
    });
    Ok(SubscriberHandle { stats, task })
}
