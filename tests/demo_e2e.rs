//! End to end: starts the real demo server process (package
//! `jwt-revoke-demo`, `demo/src/main.rs`) on a free port with a fresh SQLite
//! file and drives it over HTTP.
// With the full suite only (it builds a second binary); `sqlite` for the
// fault-injection tests, which open the server's database file.
#![cfg(all(feature = "sqlite", feature = "axum"))]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The demo binary (package `jwt-revoke-demo`, `demo/`) in this test's own
/// target directory (`target/<profile>/`). Always asks cargo to build it,
/// so a stale binary from an older build is never the one under test. It is
/// built as `cargo run -p jwt-revoke-demo` builds it: the library with the
/// features the demo asks for, whatever features this test was built with.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let profile = if profile == "debug" {
        "dev".to_owned()
    } else {
        profile
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "jwt-revoke-demo"])
        .args(["--profile", &profile])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "building the demo server failed");
    let bin = profile_dir.join("jwt-revoke-demo");
    assert!(
        bin.exists(),
        "demo server binary not found at {}",
        bin.display()
    );
    bin
}

/// The server's HS256 secret.
const SECRET: &str = "e2e-secret-e2e-secret-e2e-secret";

/// The running server; killed (and its database removed) when dropped, also
/// when an assertion fails.
struct Server {
    child: Child,
    base: String,
    db: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

async fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = std::env::temp_dir().join(format!("jwt-revoke-e2e-{}-{port}.db", std::process::id()));
    let child = Command::new(server_binary())
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        db,
    };
    let mut server = server;
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("the demo server exited before answering /health: {status}");
        }
        if let Ok(r) = client.get(format!("{}/health", server.base)).send().await
            && r.status() == StatusCode::OK
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the demo server did not answer /health within 10 s");
}

async fn login(c: &reqwest::Client, base: &str, user: &str, pw: &str) -> (StatusCode, Value) {
    let r = c
        .post(format!("{base}/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn me(c: &reqwest::Client, base: &str, token: &str) -> (StatusCode, Option<String>, Value) {
    let r = c
        .get(format!("{base}/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), www, r.json().await.unwrap_or(Value::Null))
}

/// What a login or a refresh hands a device.
struct Device {
    access: String,
    refresh: String,
    sid: String,
}

impl Device {
    fn from_answer(body: &Value) -> Device {
        let field = |name: &str| {
            body[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {body}"))
                .to_owned()
        };
        Device {
            access: field("access_token"),
            refresh: field("refresh_token"),
            sid: field("session_id"),
        }
    }
}

/// Logs `user` in (a new session, as from a new device).
async fn device(c: &reqwest::Client, base: &str, user: &str, pw: &str) -> Device {
    let (status, body) = login(c, base, user, pw).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Device::from_answer(&body)
}

/// `POST /refresh`: the status, `WWW-Authenticate` and the body.
async fn refresh(
    c: &reqwest::Client,
    base: &str,
    refresh_token: &str,
) -> (StatusCode, Option<String>, Value) {
    let r = c
        .post(format!("{base}/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), www, r.json().await.unwrap_or(Value::Null))
}

/// A refresh that must succeed: the device's next tokens.
async fn rotate(c: &reqwest::Client, base: &str, refresh_token: &str) -> Device {
    let (status, _, body) = refresh(c, base, refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Device::from_answer(&body)
}

/// A `POST` with a bearer token and no body (`/logout`, `/logout-all`).
async fn post_bearer(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
) -> (StatusCode, Value) {
    let r = c
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// `GET /sessions`.
async fn sessions(c: &reqwest::Client, base: &str, token: &str) -> (StatusCode, Value) {
    let r = c
        .get(format!("{base}/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// The session ids in a `/sessions` answer, sorted (sessions begun in the
/// same second are listed in no particular order), and which one is
/// `current`.
fn listed(body: &Value) -> (Vec<String>, Vec<String>) {
    let list = body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"));
    let ids = sorted(
        list.iter()
            .map(|s| s["session_id"].as_str().unwrap().to_owned())
            .collect(),
    );
    let current = list
        .iter()
        .filter(|s| s["current"] == json!(true))
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, current)
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// `DELETE /sessions/{id}`.
async fn delete_session(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
) -> (StatusCode, Value) {
    let r = c
        .delete(format!("{base}/sessions/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// Asserts that `token` is refused on `/me` with `code`, as a rejected
/// token: 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
async fn assert_refused(c: &reqwest::Client, base: &str, token: &str, code: &str) {
    let (status, www, body) = me(c, base, token).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({ "error": code }))
    );
    assert!(www.unwrap().contains("error=\"invalid_token\""));
}

/// Asserts that `refresh_token` is refused by `/refresh` with `code`: 401
/// with `WWW-Authenticate` as for a rejected access token.
async fn assert_refresh_refused(c: &reqwest::Client, base: &str, refresh_token: &str, code: &str) {
    let (status, www, body) = refresh(c, base, refresh_token).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({ "error": code }))
    );
    let www = www.expect("a 401 from /refresh without WWW-Authenticate");
    assert!(www.starts_with("Bearer error=\"invalid_token\""), "{www}");
}

#[tokio::test]
async fn register_login_logout_everywhere_and_password_change() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());

    let r = c
        .post(format!("{base}/register"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub = r.json::<Value>().await.unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned();

    // Duplicate, bad JSON, bad input.
    let dup = c
        .post(format!("{base}/register"))
        .json(&json!({"username": "alice", "password": "whatever!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let bad = c
        .post(format!("{base}/register"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let short = c
        .post(format!("{base}/register"))
        .json(&json!({"username": "bob", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    for username in [String::new(), "x".repeat(65)] {
        let r = c
            .post(format!("{base}/register"))
            .json(&json!({"username": username, "password": "long enough"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{username:?}");
    }

    // Two sessions (laptop, phone).
    let (status, body) = login(&c, base, "alice", "correct horse").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    // The claims are the standard ones only: the username comes from the
    // database.
    let payload = body["access_token"].as_str().unwrap().split('.').nth(1);
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            payload.unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut names: Vec<_> = claims.as_object().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["exp", "iat", "sid", "sub", "ver"]);
    assert_eq!(claims["sid"], body["session_id"]);
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("jrt1."));
    let laptop_sid = body["session_id"].as_str().unwrap().to_owned();
    let laptop = body["access_token"].as_str().unwrap().to_owned();
    let phone = login(&c, base, "alice", "correct horse").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = me(&c, base, &laptop).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"sub": sub, "username": "alice", "ver": 0, "sid": laptop_sid})
    );

    // Wrong password and unknown user look the same.
    assert_eq!(
        login(&c, base, "alice", "wrong password").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&c, base, "nobody", "wrong password").await.0,
        StatusCode::UNAUTHORIZED
    );
    // No token.
    let none = c.get(format!("{base}/me")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");

    // Log out everywhere from the phone: the laptop's token dies too.
    let out = c
        .post(format!("{base}/logout-all"))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    for token in [&laptop, &phone] {
        let (status, www, body) = me(&c, base, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, json!({"error": "token_revoked"}));
        assert!(www.unwrap().contains("error=\"invalid_token\""));
    }

    // Logging in again at once (same second) works.
    let fresh = login(&c, base, "alice", "correct horse").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = me(&c, base, &fresh).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ver"], 1);

    // Password change ends every session; only the new password works.
    let change = c
        .post(format!("{base}/password"))
        .bearer_auth(&fresh)
        .json(&json!({"old_password": "wrong!!!!", "new_password": "battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), StatusCode::UNAUTHORIZED);
    let change = c
        .post(format!("{base}/password"))
        .bearer_auth(&fresh)
        .json(&json!({"old_password": "correct horse", "new_password": "battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&c, base, &fresh).await.2,
        json!({"error": "token_revoked"})
    );
    assert_eq!(
        login(&c, base, "alice", "correct horse").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = login(&c, base, "alice", "battery staple").await;
    assert_eq!(status, StatusCode::OK);
    let newest = body["access_token"].as_str().unwrap();
    assert_eq!(me(&c, base, newest).await.2["ver"], 2);

    // A forged token is rejected with the library's code.
    assert_eq!(me(&c, base, "a.b.c").await.2, json!({"error": "malformed"}));
}

#[tokio::test]
async fn tokens_for_unknown_users_or_other_keys_are_rejected() {
    use jwt_revoke::{Algorithm, Cutoff, Guard, Keys, MemoryStore};

    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());

    // Correctly signed with the server's secret, but for a user id that
    // the server's database does not hold.
    let forge = |secret: &'static [u8]| {
        let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        store.insert("424242", Cutoff::default());
        Guard::builder(Keys::hmac(Algorithm::HS256, secret).unwrap(), store)
            .build()
            .unwrap()
    };
    let token = forge(SECRET.as_bytes())
        .issue("424242", &serde_json::json!({"username": "ghost"}))
        .await
        .unwrap();
    let (status, www, body) = me(&c, base, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "unknown_subject"}));
    assert!(www.unwrap().contains("error=\"invalid_token\""));

    // Signed with another key.
    let token = forge(b"another-secret-another-secret-another")
        .issue("424242", &serde_json::json!({"username": "ghost"}))
        .await
        .unwrap();
    assert_eq!(
        me(&c, base, &token).await.2,
        json!({"error": "invalid_signature"})
    );
}

/// The server process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn register(c: &reqwest::Client, base: &str, user: &str, pw: &str) -> String {
    let r = c
        .post(format!("{base}/register"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_login_flood_with_large_passwords_is_refused_and_memory_stays_bounded() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.clone());
    register(&c, &base, "alice", "correct horse").await;
    let pid = server.child.id();

    // 1 MB passwords: over the body limit, refused before any hashing.
    let huge = "p".repeat(1 << 20);
    // 2000-byte passwords: under the body limit, over the password cap.
    let long = "q".repeat(2_000);
    // 1000-byte passwords: accepted, so each costs an argon2 hash; only a
    // bounded number run at once, the rest are told to retry.
    let fits = "r".repeat(1_000);
    let mut tasks = Vec::new();
    for i in 0..64 {
        for (kind, pw) in [("huge", &huge), ("long", &long), ("fits", &fits)] {
            let (c, base, pw) = (c.clone(), base.clone(), pw.clone());
            let path = if i % 2 == 0 { "login" } else { "register" };
            tasks.push(tokio::spawn(async move {
                let sent = c
                    .post(format!("{base}/{path}"))
                    .json(&json!({"username": format!("flood{i}"), "password": pw}))
                    .send()
                    .await;
                // The server answers 413 from `Content-Length` and closes
                // the connection without reading the 1 MB body, so the
                // client may fail writing it (broken pipe) instead of
                // reading the 413: both are a refusal before any hashing.
                // Any other kind of request must get an answer.
                let r = match sent {
                    Err(e) if kind == "huge" && e.is_request() => return (kind, path, None, false),
                    sent => sent.unwrap(),
                };
                let retry_after = r.headers().contains_key("retry-after");
                (kind, path, Some(r.status()), retry_after)
            }));
        }
    }
    let mut busy = 0;
    for t in tasks {
        let (kind, path, status, retry_after) = t.await.unwrap();
        if kind == "huge" {
            if let Some(status) = status {
                assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{kind} {path}");
            }
            continue;
        }
        let status = status.unwrap();
        match kind {
            "long" => assert_eq!(status, StatusCode::BAD_REQUEST, "{kind} {path}"),
            _ => {
                assert!(
                    [
                        StatusCode::UNAUTHORIZED,
                        StatusCode::CREATED,
                        StatusCode::SERVICE_UNAVAILABLE
                    ]
                    .contains(&status),
                    "{kind} {path}: {status}"
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    assert!(retry_after, "503 without Retry-After");
                    busy += 1;
                }
            }
        }
    }
    let peak_mib = peak_rss_kib(pid) / 1024;
    println!("{busy} of 128 hashing requests were told to retry; peak RSS {peak_mib} MiB");
    assert!(
        peak_mib < 200,
        "the server's peak RSS reached {peak_mib} MiB during the flood"
    );

    // Normal logins still work after the flood.
    let (status, body) = login(&c, &base, "alice", "correct horse").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(me(&c, &base, token).await.0, StatusCode::OK);
}

/// Makes every write to `table` fail from now on: a trigger in the
/// server's own database file, which the test owns.
async fn fail_updates_of(db: &std::path::Path, table: &str) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "CREATE TRIGGER fail_{table} BEFORE UPDATE ON {table} \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

async fn change_password(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    old: &str,
    new: &str,
) -> reqwest::Response {
    c.post(format!("{base}/password"))
        .bearer_auth(token)
        .json(&json!({"old_password": old, "new_password": new}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_password_change_whose_revocation_fails_changes_nothing() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let token = login(&c, base, "alice", "correct horse").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The cutoff write (bump_version) fails.
    fail_updates_of(&server.db, "jwt_revoke_cutoffs").await;
    let r = change_password(&c, base, &token, "correct horse", "battery staple").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));

    // Nothing changed: the old password still works, the new one does not,
    // and the session is what it was.
    assert_eq!(
        login(&c, base, "alice", "correct horse").await.0,
        StatusCode::OK
    );
    assert_eq!(
        login(&c, base, "alice", "battery staple").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&c, base, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_whose_password_write_fails_only_logs_out() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let token = login(&c, base, "alice", "correct horse").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The users-table write fails after the revocation went through.
    fail_updates_of(&server.db, "users").await;
    let r = change_password(&c, base, &token, "correct horse", "battery staple").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The safe side: every session is over, the password is unchanged.
    assert_eq!(
        me(&c, base, &token).await.2,
        json!({"error": "token_revoked"})
    );
    assert_eq!(
        login(&c, base, "alice", "battery staple").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&c, base, "alice", "correct horse").await.0,
        StatusCode::OK
    );
}

/// Starts the demo with `secret` as `JWT_SECRET` and waits for it to exit;
/// returns its exit status and standard error. Fails if it keeps running.
async fn start_with_secret(secret: &std::ffi::OsStr) -> (std::process::ExitStatus, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = std::env::temp_dir().join(format!(
        "jwt-revoke-e2e-secret-{}-{port}.db",
        std::process::id()
    ));
    let mut child = Command::new(server_binary())
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("JWT_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..400 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        panic!("the demo started with JWT_SECRET = {secret:?}");
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    (status, stderr)
}

#[tokio::test]
async fn a_jwt_secret_that_is_not_utf8_or_too_short_refuses_to_start() {
    use std::os::unix::ffi::OsStrExt;
    let not_utf8 =
        std::ffi::OsStr::from_bytes(b"\xff\xfe-a-secret-that-is-long-enough-but-not-utf8");
    for secret in [
        not_utf8,
        std::ffi::OsStr::new("too-short"),
        std::ffi::OsStr::new(""),
    ] {
        let (status, stderr) = start_with_secret(secret).await;
        assert!(!status.success(), "{secret:?}: {status}");
        assert!(
            stderr.contains("JWT_SECRET"),
            "{secret:?}: the message does not name the variable: {stderr}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_not_401() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());

    // Without a token: the guard only runs for a route that matched, so
    // an unknown path or a wrong method is not reported as a missing token.
    let r = c.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c.post(format!("{base}/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET,HEAD");
    let r = c.get(format!("{base}/logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = c.get(format!("{base}/refresh")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = c.get(format!("{base}/sessions/x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "DELETE");
    let r = c.delete(format!("{base}/sessions")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    // A protected route with the right method still requires a token.
    for (method, path) in [
        (reqwest::Method::GET, "me"),
        (reqwest::Method::POST, "logout"),
        (reqwest::Method::POST, "logout-all"),
        (reqwest::Method::GET, "sessions"),
        (reqwest::Method::DELETE, "sessions/x"),
        (reqwest::Method::POST, "password"),
    ] {
        let r = c
            .request(method, format!("{base}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "missing_token"}),
            "{path}"
        );
    }
}

#[tokio::test]
async fn token_answers_are_not_cacheable() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;

    // RFC 6749 §5.1: an answer that carries a token is not to be stored
    // by the client, a proxy or the browser.
    let r = c
        .post(format!("{base}/login"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body = r.json::<Value>().await.unwrap();
    assert!(body["access_token"].is_string());

    // The same for a refresh, whose answer carries tokens too.
    let r = c
        .post(format!("{base}/refresh"))
        .json(&json!({"refresh_token": body["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
}

#[tokio::test]
async fn a_token_with_only_standard_claims_from_another_implementation_works() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    // With both backends compiled in (`--all-features`), jsonwebtoken needs
    // a provider chosen, as the guard does for itself.
    #[cfg(all(feature = "rust_crypto", feature = "aws_lc_rs"))]
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );

    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    let sub = register(&c, base, "alice", "correct horse").await;

    // Minted elsewhere with the server's key: sub, iat, exp, ver and
    // nothing else (no username).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // `iat` two seconds ahead, as `issue` stamps the first login after a
    // registration in this second: a new user's record rejects tokens
    // issued up to its creation.
    let mint = |ver: u64| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": sub, "iat": now + 2, "exp": now + 600, "ver": ver}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let token = mint(0);
    let (status, _, body) = me(&c, base, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"sub": sub, "username": "alice", "ver": 0, "sid": null})
    );

    // It belongs to no session: there is no "this device" to log out.
    assert_eq!(
        post_bearer(&c, base, "/logout", &token).await,
        (StatusCode::BAD_REQUEST, json!({"error": "no_session"}))
    );
    assert_eq!(me(&c, base, &token).await.0, StatusCode::OK);

    // The guard's cutoffs apply to it like to any token: logging out
    // everywhere with it revokes it.
    let r = c
        .post(format!("{base}/logout-all"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&c, base, &token).await.2,
        json!({"error": "token_revoked"})
    );
    assert_eq!(me(&c, base, &mint(1)).await.0, StatusCode::OK);
}

async fn post_json(
    c: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = c.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// Bodies are capped at 4 KiB (413) also when the client sends no length
/// (chunked): the body is cut off at the limit, not buffered whole; and
/// JSON that is not UTF-8 is a plain 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_and_non_utf8_bodies_are_bounded_and_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    raw.write_all(head.as_bytes()).await.unwrap();
    let prefix = "{\"username\":\"a\",\"password\":\"";
    raw.write_all(format!("{:x}\r\n{prefix}\r\n", prefix.len()).as_bytes())
        .await
        .unwrap();
    let chunk = "p".repeat(1024);
    for _ in 0..64 {
        let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if raw.write_all(frame.as_bytes()).await.is_err() {
            break; // the server may stop reading once over the limit
        }
    }
    let _ = raw.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/login", server.base))
        .header("content-type", "application/json")
        .body(b"{\"username\":\"a\xff\",\"password\":\"correct horse\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// A thief with a stolen token (and the old password) starts a password
/// change; while its argon2 runs, the owner logs out everywhere. The server
/// checks the token again once the hash is ready: the change is refused
/// with 401, the thief's password never works, the owner's still does.
/// (The race depends on argon2 taking a while, as it does in every
/// profile: the logout is sent a third of one argon2 run into the change,
/// which runs two.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_logged_out_everywhere_during_its_password_change_changes_nothing() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.clone());
    register(&c, &base, "alice", "correct horse").await;
    // How long one argon2 run takes in this build: the race window.
    let started = std::time::Instant::now();
    let (status, body) = login(&c, &base, "alice", "correct horse").await;
    let argon2 = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    let stolen = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = login(&c, &base, "alice", "correct horse").await;
    let owner = body["access_token"].as_str().unwrap().to_owned();

    // The thief changes the password…
    let change = {
        let (c, base, stolen) = (c.clone(), base.clone(), stolen.clone());
        tokio::spawn(async move {
            post_json(
                &c,
                format!("{base}/password"),
                Some(&stolen),
                json!({"old_password": "correct horse", "new_password": "thief's password"}),
            )
            .await
        })
    };
    // …and while its request hashes, the owner logs out everywhere.
    tokio::time::sleep((argon2 / 3).max(Duration::from_millis(50))).await;
    let (logout, _) = post_json(&c, format!("{base}/logout-all"), Some(&owner), json!({})).await;
    assert_eq!(logout, StatusCode::NO_CONTENT);
    assert_eq!(me(&c, &base, &stolen).await.0, StatusCode::UNAUTHORIZED);

    let (changed, body) = change.await.unwrap();
    assert_eq!(
        (changed, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_revoked")),
        "the stolen session's password change after the logout: {body}"
    );
    let (thief, _) = login(&c, &base, "alice", "thief's password").await;
    assert_eq!(thief, StatusCode::UNAUTHORIZED);
    let (owner, _) = login(&c, &base, "alice", "correct horse").await;
    assert_eq!(owner, StatusCode::OK);
}

#[tokio::test]
async fn logging_out_one_device_leaves_the_others_working() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let laptop = device(&c, base, "alice", "correct horse").await;
    let phone = device(&c, base, "alice", "correct horse").await;
    assert_ne!(laptop.sid, phone.sid);
    for d in [&laptop, &phone] {
        let (status, _, body) = me(&c, base, &d.access).await;
        assert_eq!((status, &body["sid"]), (StatusCode::OK, &json!(d.sid)));
    }

    // The phone logs out: its access token and its refresh token stop
    // working…
    assert_eq!(
        post_bearer(&c, base, "/logout", &phone.access).await.0,
        StatusCode::NO_CONTENT
    );
    assert_refused(&c, base, &phone.access, "session_revoked").await;
    assert_refresh_refused(&c, base, &phone.refresh, "session_revoked").await;
    assert_eq!(
        post_bearer(&c, base, "/logout", &phone.access).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "session_revoked"})
        )
    );

    // …the laptop keeps working, and refreshing too.
    assert_eq!(me(&c, base, &laptop.access).await.0, StatusCode::OK);
    let laptop2 = rotate(&c, base, &laptop.refresh).await;
    assert_eq!(laptop2.sid, laptop.sid);
    assert_eq!(me(&c, base, &laptop2.access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_refresh_token_ends_its_session() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let laptop = device(&c, base, "alice", "correct horse").await;
    let phone = device(&c, base, "alice", "correct horse").await;

    // Each refresh answers new tokens for the same session.
    let (status, _, body) = refresh(&c, base, &phone.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let phone1 = Device::from_answer(&body);
    assert_eq!(phone1.sid, phone.sid);
    assert_ne!(phone1.refresh, phone.refresh);
    let (status, _, body) = me(&c, base, &phone1.access).await;
    assert_eq!((status, &body["sid"]), (StatusCode::OK, &json!(phone.sid)));
    let phone2 = rotate(&c, base, &phone1.refresh).await;
    assert_eq!(phone2.sid, phone.sid);
    assert_eq!(me(&c, base, &phone2.access).await.0, StatusCode::OK);

    // A spent refresh token presented again (a stolen copy, say) is reuse:
    // the session ends, its newest refresh token and its access tokens
    // included.
    assert_refresh_refused(&c, base, &phone.refresh, "refresh_reused").await;
    assert_refresh_refused(&c, base, &phone2.refresh, "session_revoked").await;
    for access in [&phone.access, &phone1.access, &phone2.access] {
        assert_refused(&c, base, access, "session_revoked").await;
    }

    // The user's other session is untouched.
    assert_eq!(me(&c, base, &laptop.access).await.0, StatusCode::OK);
    let laptop1 = rotate(&c, base, &laptop.refresh).await;
    assert_eq!(me(&c, base, &laptop1.access).await.0, StatusCode::OK);
    let (status, body) = sessions(&c, base, &laptop1.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&body).0, vec![laptop.sid.clone()]);
}

#[tokio::test]
async fn garbage_tampered_and_misplaced_refresh_tokens_are_refused() {
    use jwt_revoke::{Algorithm, Cutoff, Guard, Keys, MemoryStore, RefreshKey, SessionConfig};

    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    let sub = register(&c, base, "alice", "correct horse").await;
    let alice = device(&c, base, "alice", "correct horse").await;

    // Garbage, and a genuine refresh token with one byte changed (in its
    // generation, its session id, its MAC).
    for garbage in ["", "garbage", "jrt1.a.b.c.d", "a.b.c"] {
        assert_refresh_refused(&c, base, garbage, "refresh_invalid").await;
    }
    let parts: Vec<&str> = alice.refresh.split('.').collect();
    assert_eq!(parts.len(), 5);
    for i in 2..5 {
        let mut tampered: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        let first = if tampered[i].starts_with('A') {
            "B"
        } else {
            "A"
        };
        tampered[i].replace_range(0..1, first);
        assert_refresh_refused(&c, base, &tampered.join("."), "refresh_invalid").await;
    }

    // Refresh tokens made elsewhere: under another key, and under the
    // server's own secret for a session its database does not hold.
    let forge = |secret: &'static [u8]| {
        let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        store.insert(&sub, Cutoff::default());
        Guard::builder(Keys::hmac(Algorithm::HS256, secret).unwrap(), store)
            .sessions(SessionConfig::new(RefreshKey::new(secret).unwrap()))
            .build()
            .unwrap()
    };
    let other_key = forge(b"another-secret-another-secret-another")
        .login(&sub, &())
        .await
        .unwrap();
    assert_refresh_refused(&c, base, &other_key.refresh_token, "refresh_invalid").await;
    let no_such_session = forge(SECRET.as_bytes()).login(&sub, &()).await.unwrap();
    assert_refresh_refused(&c, base, &no_such_session.refresh_token, "refresh_invalid").await;

    // An access token is not a refresh token, and the reverse.
    assert_refresh_refused(&c, base, &alice.access, "refresh_invalid").await;
    assert_refused(&c, base, &alice.refresh, "malformed").await;

    // Not a refresh request at all: 400, and over the body cap: 413.
    let (status, body) = post_json(&c, format!("{base}/refresh"), None, json!({})).await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}))
    );
    let (status, body) = post_json(
        &c,
        format!("{base}/refresh"),
        None,
        json!({"refresh_token": "x".repeat(8 * 1024)}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "payload_too_large"})
        )
    );

    // None of that harmed the genuine session.
    assert_eq!(me(&c, base, &alice.access).await.0, StatusCode::OK);
    let next = rotate(&c, base, &alice.refresh).await;
    assert_eq!(next.sid, alice.sid);
}

#[tokio::test]
async fn sessions_lists_the_active_sessions_and_marks_the_callers_own() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    register(&c, base, "bob", "bob's password").await;
    let laptop = device(&c, base, "alice", "correct horse").await;
    let phone = device(&c, base, "alice", "correct horse").await;
    let bob = device(&c, base, "bob", "bob's password").await;

    let (status, body) = sessions(&c, base, &laptop.access).await;
    assert_eq!(status, StatusCode::OK);
    // Only alice's.
    assert_eq!(
        listed(&body),
        (
            sorted(vec![laptop.sid.clone(), phone.sid.clone()]),
            vec![laptop.sid.clone()]
        )
    );
    for s in body.as_array().unwrap() {
        let mut names: Vec<_> = s.as_object().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            ["created_at", "current", "last_used_at", "session_id"]
        );
        assert!(s["created_at"].as_i64().unwrap() > 0);
        assert!(s["last_used_at"].as_i64().unwrap() >= s["created_at"].as_i64().unwrap());
    }
    // Seen from the phone, the phone is the current one.
    let (_, body) = sessions(&c, base, &phone.access).await;
    assert_eq!(listed(&body).1, vec![phone.sid.clone()]);
    // Bob sees only his.
    let (_, body) = sessions(&c, base, &bob.access).await;
    assert_eq!(
        listed(&body),
        (vec![bob.sid.clone()], vec![bob.sid.clone()])
    );

    // A refreshed session is still listed once, still current for its new
    // access token; a logged-out one is gone.
    let phone1 = rotate(&c, base, &phone.refresh).await;
    let (_, body) = sessions(&c, base, &phone1.access).await;
    assert_eq!(
        listed(&body),
        (
            sorted(vec![laptop.sid.clone(), phone.sid.clone()]),
            vec![phone.sid.clone()]
        )
    );
    assert_eq!(
        post_bearer(&c, base, "/logout", &laptop.access).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, body) = sessions(&c, base, &phone1.access).await;
    assert_eq!(listed(&body).0, vec![phone.sid.clone()]);
}

#[tokio::test]
async fn deleting_a_session_by_id_ends_only_that_session_of_the_caller() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    register(&c, base, "bob", "bob's password").await;
    let laptop = device(&c, base, "alice", "correct horse").await;
    let phone = device(&c, base, "alice", "correct horse").await;
    let bob = device(&c, base, "bob", "bob's password").await;

    // From the laptop, end the lost phone's session.
    let (status, _) = delete_session(&c, base, &laptop.access, &phone.sid).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_refused(&c, base, &phone.access, "session_revoked").await;
    assert_refresh_refused(&c, base, &phone.refresh, "session_revoked").await;
    assert_eq!(me(&c, base, &laptop.access).await.0, StatusCode::OK);

    // Gone now, another user's, or no session at all: 404, and nothing
    // changes for bob.
    let random_id = "AAAAAAAAAAAAAAAAAAAAAA";
    for id in [phone.sid.as_str(), bob.sid.as_str(), random_id, "nope"] {
        assert_eq!(
            delete_session(&c, base, &laptop.access, id).await,
            (StatusCode::NOT_FOUND, json!({"error": "not_found"})),
            "{id}"
        );
    }
    assert_eq!(me(&c, base, &bob.access).await.0, StatusCode::OK);
    rotate(&c, base, &bob.refresh).await;

    // The caller's own session, by id: ends it like /logout.
    let (status, _) = delete_session(&c, base, &laptop.access, &laptop.sid).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_refused(&c, base, &laptop.access, "session_revoked").await;
}

/// `DELETE /sessions/{id}` answers 204 only when it ends an active session
/// of the caller: one already ended by `/logout-all`, by a password change,
/// or whose refresh token expired is 404, as docs/demo.md says, and stays
/// so when asked again.
#[tokio::test]
async fn deleting_a_session_that_is_no_longer_active_is_404() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let not_found = (StatusCode::NOT_FOUND, json!({"error": "not_found"}));

    // Ended by the subject's cutoffs: logged out everywhere, or by a
    // password change.
    let before_logout_all = device(&c, base, "alice", "correct horse").await;
    let (status, _) = post_bearer(&c, base, "/logout-all", &before_logout_all.access).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before_password = device(&c, base, "alice", "correct horse").await;
    let r = change_password(
        &c,
        base,
        &before_password.access,
        "correct horse",
        "battery staple",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let laptop = device(&c, base, "alice", "battery staple").await;
    for ended in [&before_logout_all.sid, &before_password.sid] {
        assert_eq!(
            delete_session(&c, base, &laptop.access, ended).await,
            not_found,
            "{ended}"
        );
    }

    // Expired: its refresh token's lifetime is over (moved into the past
    // in the server's database, which the test owns).
    let phone = device(&c, base, "alice", "battery staple").await;
    {
        use sqlx::ConnectOptions;
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&server.db)
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE jwt_revoke_sessions SET expires_at = 1 WHERE id = ?1")
            .bind(&phone.sid)
            .execute(&mut db)
            .await
            .unwrap();
    }
    assert_refresh_refused(&c, base, &phone.refresh, "refresh_invalid").await;
    assert_eq!(
        delete_session(&c, base, &laptop.access, &phone.sid).await,
        not_found
    );

    // An active one: 204 once, then 404.
    let tablet = device(&c, base, "alice", "battery staple").await;
    let (status, _) = delete_session(&c, base, &laptop.access, &tablet.sid).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_refused(&c, base, &tablet.access, "session_revoked").await;
    assert_eq!(
        delete_session(&c, base, &laptop.access, &tablet.sid).await,
        not_found
    );
    assert_eq!(me(&c, base, &laptop.access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn logout_all_ends_every_session_and_refresh_token_of_the_user() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    register(&c, base, "bob", "bob's password").await;
    let laptop = device(&c, base, "alice", "correct horse").await;
    let phone = device(&c, base, "alice", "correct horse").await;
    let bob = device(&c, base, "bob", "bob's password").await;
    // A rotation before the logout: the newest refresh token dies too.
    let phone = rotate(&c, base, &phone.refresh).await;

    assert_eq!(
        post_bearer(&c, base, "/logout-all", &laptop.access).await.0,
        StatusCode::NO_CONTENT
    );
    for d in [&laptop, &phone] {
        assert_refused(&c, base, &d.access, "token_revoked").await;
        assert_refresh_refused(&c, base, &d.refresh, "session_revoked").await;
    }
    // Other users are untouched.
    assert_eq!(me(&c, base, &bob.access).await.0, StatusCode::OK);

    // A new login is a new session, the only one listed.
    let fresh = device(&c, base, "alice", "correct horse").await;
    assert_eq!(me(&c, base, &fresh.access).await.2["ver"], 1);
    let (_, body) = sessions(&c, base, &fresh.access).await;
    assert_eq!(listed(&body).0, vec![fresh.sid.clone()]);
    rotate(&c, base, &fresh.refresh).await;
}

#[tokio::test]
async fn a_password_change_ends_every_session_refresh_tokens_included() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let laptop = device(&c, base, "alice", "correct horse").await;
    let phone = device(&c, base, "alice", "correct horse").await;

    let r = change_password(&c, base, &laptop.access, "correct horse", "battery staple").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for d in [&laptop, &phone] {
        assert_refused(&c, base, &d.access, "token_revoked").await;
        assert_refresh_refused(&c, base, &d.refresh, "session_revoked").await;
    }

    let fresh = device(&c, base, "alice", "battery staple").await;
    let (_, body) = sessions(&c, base, &fresh.access).await;
    assert_eq!(listed(&body).0, vec![fresh.sid.clone()]);
    let next = rotate(&c, base, &fresh.refresh).await;
    assert_eq!(me(&c, base, &next.access).await.0, StatusCode::OK);
}

/// How far a counter moved between two scrapes.
fn moved_in(before: &str, after: &str, series: &str) -> f64 {
    sample(after, series) - sample(before, series)
}

/// `GET /metrics`, checked to be the Prometheus text format.
async fn scrape(c: &reqwest::Client, base: &str) -> String {
    let r = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    r.text().await.unwrap()
}

/// One sample of a scrape, e.g. `jwt_revoke_cache_total{result="hit"}`;
/// 0 when the series is not there yet.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_validations_cache_hits_and_revocations() {
    let server = start().await;
    let (c, base) = (reqwest::Client::new(), server.base.as_str());
    register(&c, base, "alice", "correct horse").await;
    let before = scrape(&c, base).await;
    // Described once by the library: a scraper shows what each one means.
    assert!(
        before.contains("# TYPE jwt_revoke_validations_total counter"),
        "{before}"
    );
    assert!(before.contains("# HELP jwt_revoke_validations_total"));

    // A login, two requests with the same token (the second one a cache
    // hit that skips the signature check), a logout everywhere, and the old
    // token refused.
    let (status, body) = login(&c, base, "alice", "correct horse").await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(me(&c, base, &token).await.0, StatusCode::OK);
    }
    let r = c
        .post(format!("{base}/logout-all"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _, body) = me(&c, base, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "token_revoked");

    let after = scrape(&c, base).await;
    // The session counters move too.
    assert_eq!(
        moved_in(&before, &after, "jwt_revoke_sessions_created_total"),
        1.0
    );
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    // Two `/me` and the logout's own check.
    assert_eq!(
        moved(r#"jwt_revoke_validations_total{outcome="accepted"}"#),
        3.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"jwt_revoke_validations_total{outcome="token_revoked"}"#),
        1.0
    );
    assert_eq!(moved(r#"jwt_revoke_revoked_total{reason="version"}"#), 1.0);
    assert_eq!(moved("jwt_revoke_revocations_total"), 1.0);
    assert!(moved(r#"jwt_revoke_cache_total{result="hit"}"#) >= 1.0);
    assert!(moved("jwt_revoke_verified_hits_total") >= 1.0);
    assert!(moved("jwt_revoke_store_loads_total") >= 1.0);
    // Nothing that identifies a user or a token is in a label.
    assert!(!after.contains(&token) && !after.contains("alice"));
}
