//! End-to-end HTTP benchmark server: one small axum app (`GET /me` answers
//! the token's `sub`) in three variants, so that a load generator measures
//! what a request costs with each way of checking the token.
//!
//! - `revoke`: jwt-revoke's [`RevokeLayer`] over a [`MemoryStore`] holding
//!   one cutoff per subject (default guard settings: the cutoff cache and
//!   the verified-token cache are on).
//! - `decode`: a middleware calling `jsonwebtoken::decode`; no revocation.
//! - `redis`: `decode` plus a Redis `GET denylist:<jti>` per request (the
//!   per-token denylist), over one multiplexed connection.
//!
//! ```text
//! jwt-revoke-bench-http serve  <revoke|decode|redis> <hs256|es256>
//! jwt-revoke-bench-http tokens <hs256|es256> <count>   # one token per line on stdout
//! ```
//!
//! `revoke` also answers `GET /stats` (accepted tokens, verified-token
//! cache hits) so the script can tell how many requests skipped the
//! signature check. `serve` reads `BIND` (default `127.0.0.1:18080`), `SUBJECTS` (subjects
//! `user-0` … in the store, default 20 000; `revoke` only) and `REDIS_URL`
//! (`redis` only). Token `i` has `sub = user-i` and `jti = t-i`, `ver = 0`,
//! and expires in two hours. `scripts/bench.sh http` runs everything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use jsonwebtoken::{Header, Validation};
use jwt_revoke::integrations::axum::Authenticated;
use jwt_revoke::integrations::tower::RevokeLayer;
use jwt_revoke::{Algorithm, Cutoff, DecodingKey, EncodingKey, Guard, Keys, MemoryStore};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HS256 secret of every variant (a benchmark, not a secret).
const HS256_SECRET: &[u8] = b"bench-http-secret-bench-http-secret";
/// The ES256 key pair of the test vectors.
const EC_PRIVATE: &[u8] = include_bytes!("../../tests/vectors/keys/ec_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../../tests/vectors/keys/ec_public.pem");

/// How long the generated tokens live: longer than any run.
const TOKEN_LIFETIME_SECS: i64 = 2 * 3600;

fn algorithm(name: &str) -> Result<Algorithm, BoxError> {
    match name {
        "hs256" => Ok(Algorithm::HS256),
        "es256" => Ok(Algorithm::ES256),
        other => Err(format!("unknown algorithm {other:?} (hs256 or es256)").into()),
    }
}

fn encoding_key(alg: Algorithm) -> Result<EncodingKey, BoxError> {
    Ok(match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE)?,
        _ => EncodingKey::from_secret(HS256_SECRET),
    })
}

fn decoding_key(alg: Algorithm) -> Result<DecodingKey, BoxError> {
    Ok(match alg {
        Algorithm::ES256 => DecodingKey::from_ec_pem(EC_PUBLIC)?,
        _ => DecodingKey::from_secret(HS256_SECRET),
    })
}

/// The claims of a generated token: jwt-revoke's standard ones plus a `jti`
/// for the denylist variant (the guard ignores it).
#[derive(Serialize)]
struct TokenClaims {
    sub: String,
    iat: i64,
    exp: i64,
    ver: u64,
    jti: String,
}

/// What the `decode` and `redis` middlewares read.
#[derive(Deserialize, Clone)]
struct Claims {
    sub: String,
    jti: String,
}

fn tokens(alg: Algorithm, count: usize) -> Result<(), BoxError> {
    use std::io::Write;
    let key = encoding_key(alg)?;
    let header = Header::new(alg);
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let claims = TokenClaims {
            sub: format!("user-{i}"),
            iat: now,
            exp: now + TOKEN_LIFETIME_SECS,
            ver: 0,
            jti: format!("t-{i}"),
        };
        writeln!(out, "{}", jsonwebtoken::encode(&header, &claims, &key)?)?;
    }
    out.flush()?;
    Ok(())
}

async fn health() -> &'static str {
    "ok"
}

/// The guard's counters the script reads around a run: how many accepted
/// requests skipped the signature check (verified-token cache).
async fn stats(State(guard): State<Guard<MemoryStore>>) -> String {
    let s = guard.stats();
    format!(
        "accepted {}\nverified_hits {}\n",
        s.accepted, s.verified_hits
    )
}

async fn me_revoke(Authenticated(user): Authenticated) -> String {
    user.sub().to_owned()
}

async fn me_decode(Extension(claims): Extension<Claims>) -> String {
    claims.sub
}

/// State of the `decode` and `redis` middlewares.
struct Decoder {
    key: DecodingKey,
    validation: Validation,
    denylist: Option<redis::aio::ConnectionManager>,
}

fn unauthorized() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}

/// `jsonwebtoken::decode` (signature, `exp`), then, with a denylist, one
/// Redis `GET` per request: a listed `jti` is 401, a Redis error 503.
async fn decode_layer(State(d): State<Arc<Decoder>>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return unauthorized();
    };
    let claims = match jsonwebtoken::decode::<Claims>(token, &d.key, &d.validation) {
        Ok(data) => data.claims,
        Err(_) => return unauthorized(),
    };
    if let Some(conn) = &d.denylist {
        let mut conn = conn.clone();
        let listed: Result<Option<Vec<u8>>, _> = redis::cmd("GET")
            .arg(format!("denylist:{}", claims.jti))
            .query_async(&mut conn)
            .await;
        match listed {
            Ok(None) => {}
            Ok(Some(_)) => return unauthorized(),
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    }
    req.extensions_mut().insert(claims);
    next.run(req).await
}

async fn router(variant: &str, alg: Algorithm) -> Result<Router, BoxError> {
    let app = Router::new().route("/health", get(health));
    if variant == "revoke" {
        let subjects: usize = std::env::var("SUBJECTS").map_or(Ok(20_000), |s| s.parse())?;
        let store = MemoryStore::new();
        for i in 0..subjects {
            store.insert(format!("user-{i}"), Cutoff::default());
        }
        let keys = Keys::new(alg, encoding_key(alg)?, decoding_key(alg)?)?;
        let guard = Guard::builder(keys, store).build()?;
        let auth = RevokeLayer::<_, ()>::new(guard.clone());
        return Ok(app
            .route("/me", get(me_revoke).route_layer(auth))
            .route("/stats", get(stats).with_state(guard)));
    }
    let denylist = match variant {
        "decode" => None,
        "redis" => {
            let url = std::env::var("REDIS_URL").map_err(|_| "REDIS_URL is not set")?;
            let client = redis::Client::open(url)?;
            Some(redis::aio::ConnectionManager::new(client).await?)
        }
        other => return Err(format!("unknown variant {other:?} (revoke, decode, redis)").into()),
    };
    let decoder = Arc::new(Decoder {
        key: decoding_key(alg)?,
        validation: Validation::new(alg),
        denylist,
    });
    let layer = middleware::from_fn_with_state(decoder, decode_layer);
    Ok(app.route("/me", get(me_decode).route_layer(layer)))
}

async fn serve(variant: &str, alg: Algorithm) -> Result<(), BoxError> {
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:18080".to_owned())
        .parse()?;
    let app = router(variant, alg).await?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    eprintln!("bench-http: {variant} {alg:?} on {bind}");
    axum::serve(listener, app).await?;
    Ok(())
}

fn usage() -> BoxError {
    "usage: jwt-revoke-bench-http serve <revoke|decode|redis> <hs256|es256>\n       \
     jwt-revoke-bench-http tokens <hs256|es256> <count>"
        .into()
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["tokens", alg, count] => tokens(algorithm(alg)?, count.parse()?),
        ["serve", variant, alg] => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(variant, algorithm(alg)?)),
        _ => Err(usage()),
    }
}
