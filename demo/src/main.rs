//! HTTP demo: register, log in on several devices, refresh, list and end
//! sessions, log out one device or everywhere, change a password. axum on
//! an embedded SQLite database.
//!
//! Run (from the repository root): `cargo run --release -p jwt-revoke-demo`
//!
//! Environment:
//! - `BIND` (default `127.0.0.1:3000`)
//! - `DATABASE_URL` (default `sqlite://jwt-revoke-demo.db`, created if absent)
//! - `JWT_SECRET` (HS256 secret, at least 32 bytes; random when absent, so
//!   tokens do not survive a restart; set but not UTF-8 or too short, the
//!   server refuses to start). It is also the refresh-token key
//!   (`RefreshKey`): the library allows one secret for both, since a
//!   refresh token can never be taken for a JWT or the reverse. Changing
//!   it therefore ends every access and refresh token at once.
//! - `RUST_LOG` (default `info`)
//!
//! `GET /metrics` serves the guard's counters in the Prometheus text format
//! (module `metrics`).
//!
//! Unauthenticated endpoints run argon2 (19 MiB each): request bodies are
//! capped at 4 KiB, passwords at 1024 bytes, and at most two hashes per CPU
//! run at once; a request beyond that gets 503 with `Retry-After`, so a
//! login flood cannot grow memory without bound.
//!
//! Tokens carry only the standard claims (`sub`, `iat`, `exp`, `ver`) and
//! the session id `sid`: the user's details are read from the database by
//! `sub`, so a token minted by another implementation with the same key
//! works as well (without `sid` it belongs to no session: `/logout` answers
//! 400 `no_session` for it, `/logout-all` ends it).
//!
//! Sessions: each `/login` is a session (one row in `jwt_revoke_sessions`)
//! with a short access token and a refresh token (30 days, sliding).
//! `/refresh` rotates the refresh token; presenting a spent one again is
//! reuse, which ends that session (`refresh_reused`). `/logout` ends the
//! caller's session, `DELETE /sessions/{id}` another of the user's, and
//! `/logout-all` and `/password` every session of the user. Expired
//! sessions are purged every ten minutes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jwt_revoke::integrations::axum::Authenticated;
use jwt_revoke::integrations::tower::RevokeLayer;
use jwt_revoke::integrations::{Credentials as Bearer, Rejection, bearer_credentials};
use jwt_revoke::{
    Algorithm, Cutoff, Guard, Keys, RefreshKey, SessionConfig, SessionTokens, SqliteStore,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod metrics;

/// The largest request body accepted (JSON with a username and passwords).
const MAX_BODY_BYTES: usize = 4 * 1024;

/// The longest password accepted, new or presented: longer is 400 before any
/// hashing.
const MAX_PASSWORD_BYTES: usize = 1024;

const USERS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL
)";

#[derive(Clone)]
struct App {
    guard: Guard<SqliteStore>,
    /// Checked against when the username is unknown, so that answer takes
    /// as long as a wrong password (no user enumeration by timing).
    dummy_hash: Arc<str>,
    /// Permits for argon2 runs (19 MiB of memory each): at most two per CPU
    /// at once, so a flood of logins cannot grow memory without bound.
    hashing: Arc<Semaphore>,
}

impl App {
    fn db(&self) -> &sqlx::SqlitePool {
        self.guard.store().pool()
    }
}

/// A JSON error answer: `{"error": code}` with a status. Every 503 carries
/// `Retry-After: 1`.
struct ApiError(StatusCode, &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

impl From<jwt_revoke::Error> for ApiError {
    fn from(e: jwt_revoke::Error) -> Self {
        if let jwt_revoke::Error::StoreUnavailable(inner) = &e {
            tracing::error!(error = %inner, "cutoff store error");
        }
        let r = Rejection::from_error(&e);
        ApiError(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            r.code,
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
    }
}

/// A refusal that is a finished response: an [`ApiError`], or an error of
/// the guard answered exactly as the library's layer answers it
/// ([`Rejection::from_error`]): `{"error": code}`, `Cache-Control:
/// no-store`, `WWW-Authenticate` on a 401 (RFC 6750 §3) and `Retry-After`
/// on a 503. Handlers that reject tokens (or refresh tokens) themselves
/// answer with it, so their 401s look like the layer's.
struct Refused(Response);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused(e.into_response())
    }
}

impl From<jwt_revoke::Error> for Refused {
    fn from(e: jwt_revoke::Error) -> Self {
        if let jwt_revoke::Error::StoreUnavailable(inner) = &e {
            tracing::error!(error = %inner, "cutoff store error");
        }
        Refused(Rejection::from_error(&e).into_response())
    }
}

impl From<sqlx::Error> for Refused {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(e).into()
    }
}

fn bad_input() -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "invalid_request")
}

/// A JSON body that could not be read: 413 when over [`MAX_BODY_BYTES`],
/// otherwise 400.
fn bad_body(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    } else {
        bad_input()
    }
}

/// Too many password hashes are running: retry shortly.
fn busy() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, "busy")
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

fn valid_username(u: &str) -> bool {
    (1..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A new password: 8 to [`MAX_PASSWORD_BYTES`] bytes.
fn valid_password(p: &str) -> bool {
    (8..=MAX_PASSWORD_BYTES).contains(&p.len())
}

/// A presented password (login, old password): at most
/// [`MAX_PASSWORD_BYTES`], refused before it is hashed.
fn presentable_password(p: &str) -> bool {
    p.len() <= MAX_PASSWORD_BYTES
}

impl App {
    /// A permit to run one argon2 hash, or 503 `busy` at once: a request
    /// never queues for one, so neither memory nor latency grows with a
    /// flood.
    fn hash_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.hashing.clone().try_acquire_owned().map_err(|_| busy())
    }
}

/// Argon2 is deliberately slow: run it off the async runtime. The permit
/// moves into the blocking task, so it is held until the hash is done even
/// if the client goes away.
async fn hash_password(permit: OwnedSemaphorePermit, password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "hash_failed"))
}

async fn verify_password(permit: OwnedSemaphorePermit, password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

async fn register(
    State(app): State<App>,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(c) = body.map_err(bad_body)?;
    if !valid_username(&c.username) || !valid_password(&c.password) {
        return Err(bad_input());
    }
    let hash = hash_password(app.hash_permit()?, c.password).await?;
    let inserted: Result<(i64,), sqlx::Error> =
        sqlx::query_as("INSERT INTO users (username, password_hash) VALUES (?1, ?2) RETURNING id")
            .bind(&c.username)
            .bind(&hash)
            .fetch_one(app.db())
            .await;
    let id = match inserted {
        Ok((id,)) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(ApiError(StatusCode::CONFLICT, "username_taken"));
        }
        Err(e) => return Err(e.into()),
    };
    let sub = id.to_string();
    // The subject's cutoff row: without it every token of this user would be
    // rejected as `unknown_subject`. If it cannot be written, undo the user
    // row so the client can simply retry the registration.
    if let Err(e) = app.guard.store().insert(&sub, Cutoff::default()).await {
        let _ = sqlx::query("DELETE FROM users WHERE id = ?1")
            .bind(id)
            .execute(app.db())
            .await;
        return Err(jwt_revoke::Error::StoreUnavailable(e).into());
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "sub": sub, "username": c.username })),
    ))
}

async fn login(
    State(app): State<App>,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(c) = body.map_err(bad_body)?;
    if !presentable_password(&c.password) {
        return Err(bad_input());
    }
    let permit = app.hash_permit()?;
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username = ?1")
            .bind(&c.username)
            .fetch_optional(app.db())
            .await?;
    // Same answer (and the same work) for an unknown user and a wrong password.
    let (id, hash) = row.unwrap_or_else(|| (0, app.dummy_hash.to_string()));
    if !verify_password(permit, c.password, hash).await || id == 0 {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    // A new session (this device). Only the standard claims and `sid`:
    // everything else about the user is in the database, keyed by `sub`.
    let tokens = app.guard.login(&id.to_string(), &()).await?;
    Ok(token_answer(tokens))
}

/// The answer of `/login` and `/refresh`, the shape of an OAuth token
/// response (RFC 6749 §5.1) plus the session id. A response carrying a
/// token must not be cached.
fn token_answer(tokens: SessionTokens) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": tokens.expires_in.as_secs(),
            "refresh_token": tokens.refresh_token,
            "session_id": tokens.session_id,
        })),
    )
}

/// Rotates a refresh token: a new access token and the next refresh token
/// of the same session. A spent refresh token is reuse: the session ends
/// (`refresh_reused`); one that is not genuine, or whose session expired,
/// is `refresh_invalid`; one of an ended session is `session_revoked`. All
/// 401 with `WWW-Authenticate`, like a rejected access token.
async fn refresh(
    State(app): State<App>,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<impl IntoResponse, Refused> {
    let Json(r) = body.map_err(bad_body)?;
    let tokens = app.guard.refresh(&r.refresh_token, &()).await?;
    Ok(token_answer(tokens))
}

/// The user row for a verified token's `sub`: the database is the source of
/// truth for who the user is, not claims in the token. A `sub` with no user
/// row (removed, or never a user here) is 401 `unknown_subject`.
async fn user_of(app: &App, sub: &str) -> Result<(i64, String, String), Refused> {
    let unknown = || Refused::from(jwt_revoke::Error::UnknownSubject);
    let id: i64 = sub.parse().map_err(|_| unknown())?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT username, password_hash FROM users WHERE id = ?1")
            .bind(id)
            .fetch_optional(app.db())
            .await?;
    let (username, hash) = row.ok_or_else(unknown)?;
    Ok((id, username, hash))
}

async fn me(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<impl IntoResponse, Refused> {
    let (_, username, _) = user_of(&app, user.sub()).await?;
    Ok(Json(json!({
        "sub": user.sub(),
        "username": username,
        "ver": user.version(),
        "sid": user.session_id(),
    })))
}

/// Logs out this device: the caller's session ends (its access tokens and
/// its refresh token); the user's other sessions keep working. A token
/// without a session (minted elsewhere with the same key) has nothing to
/// end on its own: 400 `no_session`, and `/logout-all` ends it.
async fn logout(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<StatusCode, Refused> {
    if user.session_id().is_none() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "no_session").into());
    }
    // `false` only when the session ended meanwhile (another request): it
    // is over either way.
    app.guard.logout(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Logs out everywhere: every token and every session of this user issued
/// so far ends (one version bump).
async fn logout_all(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<StatusCode, Refused> {
    app.guard.bump_version(user.sub()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's active sessions, oldest first (times in Unix seconds);
/// `current` marks the caller's own.
async fn sessions(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<impl IntoResponse, Refused> {
    let current = user.session_id();
    let list: Vec<_> = app
        .guard
        .sessions(user.sub())
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "session_id": s.id,
                "created_at": s.created_at,
                "last_used_at": s.last_used_at,
                "current": current == Some(s.id.as_str()),
            })
        })
        .collect();
    Ok(Json(list))
}

/// Ends one session of the user (e.g. a lost phone, from the laptop): 204
/// only when this ends an active session. An id that is not an active
/// session of this user is 404: already ended (`/logout`, `/logout-all`, a
/// password change, a refresh-token reuse), expired, unknown, or another
/// user's; the answer does not tell whether the id exists.
async fn end_session(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Refused> {
    let not_found = || Refused::from(ApiError(StatusCode::NOT_FOUND, "not_found"));
    let Path(id) = id.map_err(|_| not_found())?;
    // Active as `/sessions` lists it. `revoke_session` alone is not enough:
    // it answers `true` for any session row not revoked yet, also one that
    // expired or that the user's cutoffs ended (`/logout-all` and a
    // password change bump the version and leave the rows as they are).
    let active = app
        .guard
        .sessions(user.sub())
        .await?
        .iter()
        .any(|s| s.id == id);
    // `false` when another request revoked it meanwhile. (A `/logout-all`
    // landing between the two calls is not seen: that session is over
    // either way.)
    if active && app.guard.revoke_session(user.sub(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

async fn change_password(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    headers: HeaderMap,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode, Refused> {
    let Json(p) = body.map_err(bad_body)?;
    if !valid_password(&p.new_password) || !presentable_password(&p.old_password) {
        return Err(bad_input().into());
    }
    let (id, _, hash) = user_of(&app, user.sub()).await?;
    if !verify_password(app.hash_permit()?, p.old_password, hash).await {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "invalid_credentials").into());
    }
    let new_hash = hash_password(app.hash_permit()?, p.new_password).await?;
    // The two argon2 runs take a while: the session may have been logged
    // out (this device, everywhere, or by another password change)
    // meanwhile. Check the caller's token once more before writing
    // anything: a revoked token gets 401 and nothing changes. What remains is the short window between this
    // check and the writes below (two database round trips, no hashing): a
    // logout that lands inside it does not stop this change, but the change
    // bumps the version itself, so no session survives it either way.
    let token = match bearer_credentials(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    ) {
        Bearer::Bearer(token) => token,
        _ => return Err(ApiError(StatusCode::UNAUTHORIZED, "invalid_token").into()),
    };
    app.guard.validate::<()>(token).await?;
    // Two writes, in the order that fails safe. The revocation goes first:
    // - if it fails, nothing has changed (the old password and every
    //   session stand) and the client gets 503 and may retry;
    // - if it succeeds and the password write then fails, every session is
    //   over but the password is the old one: the user logs in again with it
    //   and retries. Nobody keeps a session the user meant to end.
    // The other order could leave the new password in place with the stolen
    // session still alive (password written, revocation failed). The bump
    // ends every session of the user too: their refresh tokens are refused
    // (`session_revoked`), so no device gets a new access token.
    // A login that checked the old password just before the change can
    // still get a token right after the revocation: a race inherent in any
    // order, closed by a second bump after the password write if it matters.
    app.guard.bump_version(user.sub()).await?;
    sqlx::query("UPDATE users SET password_hash = ?1 WHERE id = ?2")
        .bind(new_hash)
        .bind(id)
        .execute(app.db())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How often sessions whose refresh token expired long ago are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Deletes expired sessions every [`PURGE_EVERY`] (the first time at
/// start), so the sessions table holds only sessions that can still
/// matter. A failure is logged and retried at the next round.
fn spawn_session_purge(guard: Guard<SqliteStore>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match guard.purge_sessions().await {
                Ok(purged) => tracing::info!(purged, "expired sessions purged"),
                // The store's own error says why (the wrapper only says
                // "unavailable").
                Err(jwt_revoke::Error::StoreUnavailable(e)) => {
                    tracing::warn!(error = %e, "purging expired sessions failed")
                }
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            }
        }
    });
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// One log line per request: method, path, status, latency. Never headers
/// (they carry tokens) or bodies (they carry passwords).
async fn log_requests(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = Instant::now();
    let res = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = res.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    res
}

/// The shortest `JWT_SECRET` accepted: HS256's key size.
const MIN_SECRET_BYTES: usize = 32;

/// `JWT_SECRET`, or a random secret when it is not set. A secret that is set
/// but unusable (not UTF-8, shorter than 32 bytes, empty) is an error: the
/// operator meant to set one, and silently replacing it would log everyone
/// out on every restart and hide the mistake.
fn secret_from_env() -> Result<Vec<u8>, String> {
    match std::env::var("JWT_SECRET") {
        Ok(s) if s.len() >= MIN_SECRET_BYTES => Ok(s.into_bytes()),
        Ok(s) => Err(format!(
            "JWT_SECRET is set but {} bytes long: it must be at least {MIN_SECRET_BYTES} bytes \
             (unset it to use a random secret)",
            s.len()
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(
            "JWT_SECRET is set but is not valid UTF-8: refusing to start with another secret"
                .to_owned(),
        ),
        Err(std::env::VarError::NotPresent) => {
            use argon2::password_hash::rand_core::{OsRng, RngCore};
            let mut bytes = vec![0u8; MIN_SECRET_BYTES];
            OsRng.fill_bytes(&mut bytes);
            tracing::warn!(
                "JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
            );
            Ok(bytes)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colours only on a terminal: a log redirected to a file stays plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let secret = match secret_from_env() {
        Ok(secret) => secret,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let db_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://jwt-revoke-demo.db".to_owned());

    // Before the guard is built: it registers its counters at build time.
    let metrics = metrics::install()?;
    let store = SqliteStore::connect(&db_url).await?;
    sqlx::raw_sql(USERS_SCHEMA).execute(store.pool()).await?;
    let keys = Keys::hmac(Algorithm::HS256, &secret)?;
    // One secret for access and refresh tokens (see the module docs).
    let session_config = SessionConfig::new(RefreshKey::new(&secret)?);
    let guard = Guard::builder(keys, store)
        .sessions(session_config)
        .build()?;
    spawn_session_purge(guard.clone());
    // Two argon2 runs per CPU at once: enough to keep every core busy,
    // about 19 MiB each.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hashing = Arc::new(Semaphore::new(2 * cpus));
    let permit = hashing.clone().try_acquire_owned()?;
    let dummy_hash = hash_password(permit, "not a real password".to_owned())
        .await
        .map_err(|_| "cannot hash")?;
    let app = App {
        guard: guard.clone(),
        dummy_hash: dummy_hash.into(),
        hashing,
    };

    // The guard wraps each protected handler (`MethodRouter::route_layer`),
    // not the router: it runs only for a request that matched one of these
    // paths *and* methods. `Router::layer` would also wrap the 404 fallback
    // (`GET /nope` answered 401 `missing_token`), and even
    // `Router::route_layer` wraps each path's 405 fallback (`GET /logout`
    // answered 401): a client could not tell a typo from an expired
    // session.
    let auth = RevokeLayer::<_, ()>::new(guard);
    let protected = Router::new()
        .route("/me", get(me).route_layer(auth.clone()))
        .route("/logout", post(logout).route_layer(auth.clone()))
        .route("/logout-all", post(logout_all).route_layer(auth.clone()))
        .route("/sessions", get(sessions).route_layer(auth.clone()))
        .route(
            "/sessions/{id}",
            delete(end_session).route_layer(auth.clone()),
        )
        .route("/password", post(change_password).route_layer(auth));
    let router = Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/health", get(health))
        .merge(protected)
        .merge(metrics::router(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_requests))
        .with_state(app);

    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(%bind, database = %db_url, "jwt-revoke demo listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}
