//! Invalidation over PostgreSQL `LISTEN` / `NOTIFY`.
//!
//! ```no_run
//! use jwt_revoke::invalidation::postgres::{PgPublisher, spawn_subscriber};
//! use jwt_revoke::invalidation::{BusKey, SubscriberConfig};
//! use jwt_revoke::{Algorithm, Guard, Keys, PostgresStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "postgres://app@127.0.0.1/app";
//! let store = PostgresStore::connect(url).await?;
//! // A random secret of its own, shared by every instance (not the JWT key).
//! let bus_key = BusKey::from_bytes(b"another secret, 32 bytes or more")?;
//! let publisher = PgPublisher::new(store.pool().clone(), "jwt_revoke", bus_key.clone())?;
//! let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
//! let guard = Guard::builder(keys, store).publisher(publisher).build()?;
//! let _subscriber = spawn_subscriber(
//!     guard.clone(),
//!     url,
//!     "jwt_revoke",
//!     bus_key,
//!     SubscriberConfig::default(),
//! )?;
//! # Ok(()) }
//! ```
//!
//! Any role that can connect to the database may `NOTIFY` on any channel
//! (no privilege is needed): the MAC (see the [`invalidation`](super) module)
//! is what keeps forged events out.
//!
//! Channel names are limited to 63 bytes (PostgreSQL truncates a longer
//! `LISTEN` name and refuses it in `pg_notify`, so the two ends would never
//! meet): a longer name is refused at construction. PostgreSQL refuses a
//! `NOTIFY` payload of 8000 bytes or more, a little under the bus's own
//! [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES): [`PgPublisher`] sends
//! messages of at most [`MAX_NOTIFY_BYTES`] and refuses a larger one before
//! sending it, with an error that says so. Such an event (for a subject of
//! nearly 8 KB) is counted by the guard
//! ([`Guard::publish_errors`](crate::Guard::publish_errors)) like any failed
//! publish, and other instances see the revocation within their cache TTL.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgListener, PgPool};

use super::{
    DEFAULT_PUBLISH_TIMEOUT, Session, SubscriberConfig, SubscriberHandle, publish_with_retry,
};
use crate::bus::wire::{Body, BusConfigError, BusKey, check_channel, seal};
use crate::bus::{BoxFuture, CutoffEvent, Publisher};
use crate::guard::Guard;
use crate::store::{CutoffStore, StoreError};

/// The longest channel name PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_CHANNEL_BYTES: usize = 63;

fn check_pg_channel(channel: &str) -> Result<(), BusConfigError> {
    check_channel(channel)?;
    if channel.len() > MAX_CHANNEL_BYTES {
        return Err(BusConfigError::InvalidChannel {
            reason: "longer than 63 bytes (PostgreSQL would truncate it)",
        });
    }
    Ok(())
}

const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The largest message [`PgPublisher`] sends, in bytes: PostgreSQL refuses
/// a `NOTIFY` payload of 8000 bytes or more. (It counts the bytes in the
/// database's encoding, which for a `UTF8` database are the message's own;
/// in another encoding, a message with non-ASCII characters under this
/// limit may still be refused by the server, which is a publish error as
/// well.)
pub const MAX_NOTIFY_BYTES: usize = 7999;

/// Publishes authenticated cutoff events with `pg_notify(channel, <message>)`.
///
/// Each attempt has a deadline ([`PgPublisher::with_timeout`], default 1 s);
/// a failed or late attempt on the pool is retried once on a new dedicated
/// connection (a pool may hand out a connection that died with a server
/// restart when it does not test connections before use).
#[derive(Clone)]
pub struct PgPublisher {
    pool: PgPool,
    channel: String,
    key: BusKey,
    timeout: Duration,
}

impl std::fmt::Debug for PgPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPublisher")
            .field("channel", &self.channel)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PgPublisher {
    /// A publisher on `pool` (the store's pool will do). Fails when the
    /// channel name is empty, longer than 63 bytes or holds control
    /// characters.
    pub fn new(
        pool: PgPool,
        channel: impl Into<String>,
        key: BusKey,
    ) -> Result<Self, BusConfigError> {
        let channel = channel.into();
        check_pg_channel(&channel)?;
        Ok(PgPublisher {
            pool,
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
        let query = sqlx::query(NOTIFY).bind(&self.channel).bind(payload);
        if !fresh {
            query.execute(&self.pool).await.map_err(StoreError::new)?;
            return Ok(());
        }
        let mut conn = PgConnection::connect_with(&self.pool.connect_options())
            .await
            .map_err(StoreError::new)?;
        query.execute(&mut conn).await.map_err(StoreError::new)?;
        let _ = conn.close().await;
        Ok(())
    }
}

impl Publisher for PgPublisher {
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let payload = seal(&self.key, &self.channel, &Body::event(event))?;
            // Refused here rather than by the server: a clear error, and no
            // retry on a new connection that would fail the same way.
            if payload.len() > MAX_NOTIFY_BYTES {
                return Err(StoreError::msg(format!(
                    "bus message of {} bytes exceeds PostgreSQL's NOTIFY limit (payloads under 8000 bytes); \
                     the event is not sent",
                    payload.len()
                )));
            }
            publish_with_retry(self.timeout, |fresh| self.attempt(&payload, fresh)).await
        })
    }
}

/// Listens on `channel` over a dedicated connection to `url`, publishes
/// heartbeats over a second one, and passes every authenticated event to
/// `guard`; reconnects with backoff when the connection closes or goes
/// silent (see the [module documentation](super) for the staleness bound).
/// Fails on an invalid channel name (see [`PgPublisher::new`]) or
/// configuration. Needs a Tokio runtime.
pub fn spawn_subscriber<S: CutoffStore>(
    guard: Guard<S>,
    url: impl Into<String>,
    channel: impl Into<String>,
    key: BusKey,
    config: SubscriberConfig,
) -> Result<SubscriberHandle, BusConfigError> {
    let (url, channel) = (url.into(), channel.into());
    check_pg_channel(&channel)?;
    let (mut session, stats) = Session::new(guard, channel, key, config)?;
    let task = tokio::spawn(async move {
        loop {
            let channel = session.channel().to_owned();
            let connect = async {
                let mut listener = PgListener::connect(&url).await?;
                listener.listen(&channel).await?;
                let conn = PgConnection::connect(&url).await?;
                Ok::<_, sqlx::Error>((listener, conn))
            };
            if let Some((mut listener, conn)) = session.deadline(connect).await {
                let conn = Arc::new(tokio::sync::Mutex::new(conn));
                let _heartbeats = session.spawn_heartbeats(move |message| {
                    let (conn, channel) = (Arc::clone(&conn), channel.clone());
                    async move {
                        let mut conn = conn.lock().await;
                        sqlx::query(NOTIFY)
                            .bind(&channel)
                            .bind(message)
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::new)?;
                        Ok(())
                    }
                });
                let mut deadline = session.next_deadline();
                // `try_recv` answers `Ok(None)` when the connection is lost;
                // reconnecting is handled here, with a fresh listener, so the
                // cache is cleared after every gap. A timeout (no heartbeat
                // of ours in time) drops the listener mid-read: it is not
                // reused.
                while let Ok(Ok(Some(notification))) =
                    tokio::time::timeout_at(deadline, listener.try_recv()).await
                {
                    if session.message(notification.payload().as_bytes()) {
                        deadline = session.next_deadline();
                    }
                }
            }
            session.disconnected().await;
        }
    });
    Ok(SubscriberHandle { stats, task })
}
