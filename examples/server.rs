//! HTTP demo: register, log in, call a protected endpoint, log out
//! everywhere, change a password. axum on an embedded SQLite database.
//!
//! Run: `cargo run --release --example server --features sqlite,axum`
//!
//! Environment:
//! - `BIND` (default `127.0.0.1:3000`)
//! - `DATABASE_URL` (default `sqlite://jwt-revoke-demo.db`, created if absent)
//! - `JWT_SECRET` (HS256 secret, at least 32 bytes; random when absent, so
//!   tokens do not survive a restart)
//! - `RUST_LOG` (default `info`)

use std::net::SocketAddr;
use std::time::Instant;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwt_revoke::integrations::Rejection;
use jwt_revoke::integrations::axum::Authenticated;
use jwt_revoke::integrations::tower::RevokeLayer;
use jwt_revoke::{Algorithm, Cutoff, Guard, Keys, SqliteStore};
use serde::{Deserialize, Serialize};
use serde_json::json;

const USERS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL
)";

/// Claims the demo adds to every token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DemoClaims {
    username: String,
}

#[derive(Clone)]
struct App {
    guard: Guard<SqliteStore>,
    /// Checked against when the username is unknown, so that answer takes
    /// as long as a wrong password (no user enumeration by timing).
    dummy_hash: std::sync::Arc<str>,
}

impl App {
    fn db(&self) -> &sqlx::SqlitePool {
        self.guard.store().pool()
    }
}

/// A JSON error answer: `{"error": code}` with a status.
struct ApiError(StatusCode, &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<jwt_revoke::Error> for ApiError {
    fn from(e: jwt_revoke::Error) -> Self {
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

fn bad_input() -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "invalid_request")
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
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

fn valid_password(p: &str) -> bool {
    (8..=256).contains(&p.len())
}

/// Argon2 is deliberately slow: run it off the async runtime.
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
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

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
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
    let Json(c) = body.map_err(|_| bad_input())?;
    if !valid_username(&c.username) || !valid_password(&c.password) {
        return Err(bad_input());
    }
    let hash = hash_password(c.password).await?;
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
    let Json(c) = body.map_err(|_| bad_input())?;
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username = ?1")
            .bind(&c.username)
            .fetch_optional(app.db())
            .await?;
    // Same answer (and the same work) for an unknown user and a wrong password.
    let (id, hash) = row.unwrap_or_else(|| (0, app.dummy_hash.to_string()));
    if !verify_password(c.password, hash).await || id == 0 {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let token = app
        .guard
        .issue(
            &id.to_string(),
            &DemoClaims {
                username: c.username,
            },
        )
        .await?;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": app.guard.access_ttl().as_secs(),
    })))
}

async fn me(Authenticated(user): Authenticated<DemoClaims>) -> impl IntoResponse {
    Json(json!({
        "sub": user.sub(),
        "username": user.claims().username,
        "ver": user.version(),
    }))
}

async fn logout(
    State(app): State<App>,
    Authenticated(user): Authenticated<DemoClaims>,
) -> Result<StatusCode, ApiError> {
    // Log out everywhere: every token of this user issued so far dies.
    app.guard.bump_version(user.sub()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_password(
    State(app): State<App>,
    Authenticated(user): Authenticated<DemoClaims>,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(p) = body.map_err(|_| bad_input())?;
    if !valid_password(&p.new_password) {
        return Err(bad_input());
    }
    let id: i64 = user.sub().parse().map_err(|_| bad_input())?;
    let row: Option<(String,)> = sqlx::query_as("SELECT password_hash FROM users WHERE id = ?1")
        .bind(id)
        .fetch_optional(app.db())
        .await?;
    let Some((hash,)) = row else {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "unknown_subject"));
    };
    if !verify_password(p.old_password, hash).await {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let new_hash = hash_password(p.new_password).await?;
    sqlx::query("UPDATE users SET password_hash = ?1 WHERE id = ?2")
        .bind(new_hash)
        .bind(id)
        .execute(app.db())
        .await?;
    // Every existing session of this user ends with the password.
    app.guard.bump_version(user.sub()).await?;
    Ok(StatusCode::NO_CONTENT)
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

fn secret_from_env() -> Vec<u8> {
    match std::env::var("JWT_SECRET") {
        Ok(s) => s.into_bytes(),
        Err(_) => {
            use rand::RngCore;
            let mut bytes = vec![0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            tracing::warn!(
                "JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
            );
            bytes
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
        .init();

    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let db_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://jwt-revoke-demo.db".to_owned());

    let store = SqliteStore::connect(&db_url).await?;
    sqlx::raw_sql(USERS_SCHEMA).execute(store.pool()).await?;
    let keys = Keys::hmac(Algorithm::HS256, &secret_from_env())?;
    let guard = Guard::builder(keys, store).build()?;
    let dummy_hash = hash_password("not a real password".to_owned())
        .await
        .map_err(|_| "cannot hash")?;
    let app = App {
        guard: guard.clone(),
        dummy_hash: dummy_hash.into(),
    };

    let protected = Router::new()
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/password", post(change_password))
        .layer(RevokeLayer::<_, DemoClaims>::new(guard));
    let router = Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/health", get(health))
        .merge(protected)
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
