//! `PostgresStore` against a real PostgreSQL server (started by
//! `scripts/services.sh`): the conformance suite plus PostgreSQL specifics.
#![cfg(feature = "postgres")]

mod common;

use std::time::{Duration, Instant};

use jwt_revoke::{Algorithm, Cutoff, CutoffStore, Guard, Keys, PostgresStore};

impl common::conformance::TestStore for PostgresStore {
    async fn fresh() -> Self {
        // Tables of its own: the global cutoff is not shared with tests
        // running at the same time.
        common::isolated_postgres().await
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff).await.unwrap();
    }
    async fn lose(&self, sub: &str) -> bool {
        self.remove(sub).await.unwrap()
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::PostgresStore);
}

impl common::session_conformance::SessionTestStore for PostgresStore {
    const MAX_GENERATION: u64 = i64::MAX as u64;
}

mod session_conformance {
    crate::session_conformance!(jwt_revoke::PostgresStore);
}

#[tokio::test]
async fn migrate_is_idempotent_and_a_new_pool_sees_the_same_rows() {
    let url = common::server_url("POSTGRES_URL");
    let a = PostgresStore::connect(&url).await.unwrap();
    a.migrate().await.unwrap();
    let sub = common::unique("pg-restart");
    let bumped = a.bump_version(&sub).await.unwrap();
    a.pool().close().await;
    let b = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(bumped.version, 1);
    assert_eq!(b.load(&sub).await.unwrap(), Some(bumped));
    assert!(b.remove(&sub).await.unwrap());
    assert_eq!(b.load(&sub).await.unwrap(), None);
}

#[tokio::test]
async fn a_version_at_the_maximum_is_reported_not_wrapped() {
    let s = PostgresStore::connect(&common::server_url("POSTGRES_URL"))
        .await
        .unwrap();
    let sub = common::unique("pg-max");
    s.insert(&sub, Cutoff::new(i64::MAX as u64, 0))
        .await
        .unwrap();
    assert!(s.bump_version(&sub).await.is_err());
    assert!(
        s.insert(&common::unique("pg-huge"), Cutoff::new(u64::MAX, 0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_guard_on_an_unreachable_server_fails_closed_with_503() {
    // Mint a token on a working store, validate it on a guard whose pool
    // points at a port where nothing listens.
    let good = PostgresStore::connect(&common::server_url("POSTGRES_URL"))
        .await
        .unwrap();
    let sub = common::unique("pg-down");
    good.insert(&sub, Cutoff::default()).await.unwrap();
    let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let token = Guard::builder(keys(), good)
        .build()
        .unwrap()
        .issue(&sub, &())
        .await
        .unwrap();

    let dead_pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:9/none")
        .unwrap();
    let guard = Guard::builder(keys(), PostgresStore::new(dead_pool))
        .build()
        .unwrap();
    let err = guard.validate::<()>(&token).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
}

#[tokio::test]
async fn connecting_to_a_server_that_is_down_fails_within_seconds() {
    // sqlx retries a refused connection until the pool's acquire timeout:
    // the store's bound, not sqlx's default 30 s, decides how long a call
    // waits while the server is down.
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(4),
        PostgresStore::connect("postgres://postgres@127.0.0.1:9/none"),
    )
    .await;
    assert!(
        matches!(res, Ok(Err(_))),
        "{:?}",
        res.map(|r| r.map(|_| ()))
    );
}

/// A new LATIN1 database on the test server, named after `name` and this
/// process: an admin connection (to drop it after), its name, and a store
/// over it.
async fn latin1_database(name: &str) -> (sqlx::PgConnection, String, PostgresStore) {
    use sqlx::Connection as _;
    let url = common::server_url("POSTGRES_URL");
    let db = format!("{name}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut admin)
        .await;
    sqlx::query(&format!(
        "CREATE DATABASE {db} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let base = url.rsplit_once('/').unwrap().0;
    let store = PostgresStore::connect(&format!("{base}/{db}"))
        .await
        .unwrap();
    (admin, db, store)
}

/// In a PostgreSQL database whose encoding is not UTF-8 (LATIN1 here), a
/// subject with a character the encoding lacks cannot be stored: like a
/// NUL byte, it loads as unknown (the guard answers `401 unknown_subject`,
/// as with any other store, not `503` as if the database were down), and a
/// write for it is an error that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_a_latin1_database_cannot_hold_is_unknown_and_cannot_be_written() {
    use jwt_revoke::MemoryStore;
    let (mut admin, db, store) = latin1_database("jr_latin1").await;
    store.insert("alice", Cutoff::default()).await.unwrap();
    let guard = Guard::builder(
        Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
        store.clone(),
    )
    .build()
    .unwrap();
    let memory = Guard::builder(
        Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
        MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)),
    )
    .build()
    .unwrap();

    let sub = "user-日本";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": sub, "iat": now, "exp": now + 600, "ver": 0 }),
        &jsonwebtoken::EncodingKey::from_secret(common::SECRET),
    )
    .unwrap();
    let in_memory = memory.validate::<()>(&token).await.unwrap_err().code();
    let in_postgres = guard.validate::<()>(&token).await.unwrap_err().code();
    let loaded = store.load(sub).await.map_err(|e| e.to_string());
    let removed = store.remove(sub).await.map_err(|e| e.to_string());
    let writes = [
        store.insert(sub, Cutoff::default()).await.map(|_| ()),
        store.bump_version(sub).await.map(|_| ()),
        store.revoke_before(sub, now).await.map(|_| ()),
    ]
    .map(|r| r.map_err(|e| e.to_string()));
    let alice = store.load("alice").await.map_err(|e| e.to_string());
    store.pool().close().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut admin)
        .await;
    assert_eq!(in_memory, "unknown_subject");
    assert_eq!(in_postgres, "unknown_subject");
    assert_eq!(loaded, Ok(None));
    assert_eq!(removed, Ok(false));
    for w in writes {
        assert!(
            matches!(&w, Err(e) if e.contains("cannot be represented in the database's encoding")),
            "{w:?}"
        );
    }
    assert_eq!(alice.map(|c| c.map(|c| c.version)), Ok(Some(0)));
}

/// Sessions in a LATIN1 database: a subject (or session id) the encoding
/// cannot hold has no sessions, as with a NUL byte; creating one is an
/// error that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_a_latin1_database_cannot_hold_is_unknown_and_cannot_be_created() {
    use jwt_revoke::{Rotate, Rotation, Session, SessionStore};
    let (mut admin, db, store) = latin1_database("jr_latin1_sessions").await;
    let session = |sub: &str, id: String| Session {
        id,
        sub: sub.to_owned(),
        generation: 0,
        version: 0,
        created_at: 100,
        last_used_at: 100,
        expires_at: 1_000,
        revoked_at: None,
        not_before_seen: 0,
    };
    let rotate = Rotate {
        generation: 0,
        now: 200,
        expires_at: 2_000,
        grace: None,
    };
    let alice = session("alice", common::session_id());
    store.create_session(&alice).await.unwrap();
    let mut outcomes = Vec::new();
    for (sub, sid) in [
        ("user-日本", common::session_id()),
        ("alice", "sid-日本".to_owned()),
    ] {
        let created = store
            .create_session(&session(sub, sid.clone()))
            .await
            .map_err(|e| e.to_string());
        outcomes.push((
            created,
            store
                .load_session(sub, &sid)
                .await
                .map_err(|e| e.to_string()),
            store
                .rotate_refresh(sub, &sid, rotate)
                .await
                .map_err(|e| e.to_string()),
            store
                .revoke_session(sub, &sid, 300)
                .await
                .map_err(|e| e.to_string()),
            store
                .list_sessions(sub, 200)
                .await
                .map(|l| l.len())
                .map_err(|e| e.to_string()),
        ));
    }
    let alice_now = store.load_session("alice", &alice.id).await;
    store.pool().close().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut admin)
        .await;
    for (i, (created, loaded, rotated, revoked, _)) in outcomes.iter().enumerate() {
        assert!(
            matches!(created, Err(e) if e.contains("cannot be represented in the database's encoding")),
            "{i}: {created:?}"
        );
        assert_eq!(loaded, &Ok(None), "{i}");
        assert_eq!(rotated, &Ok(Rotation::Unknown), "{i}");
        assert_eq!(revoked, &Ok(false), "{i}");
    }
    assert_eq!(outcomes[0].4, Ok(0));
    assert_eq!(outcomes[1].4, Ok(1), "alice's own session still lists");
    assert_eq!(alice_now.unwrap(), Some(alice));
}

/// README, "Stores" and "Guarantees": a PostgreSQL reached over a path that
/// goes silent (sockets open, nothing answers) costs a request at most
/// `store_timeout` (validation and revocation alike), and
/// `PostgresStore::connect` gives up within its 2 s acquire timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_postgres_costs_at_most_the_store_timeout() {
    let url = common::server_url("POSTGRES_URL");
    let proxy = common::proxy::Proxy::start(&common::proxy::target_of(&url)).await;
    let store = jwt_revoke::PostgresStore::connect(&proxy.url(&url))
        .await
        .unwrap();
    let sub = common::unique("pg-silent");
    store.insert(&sub, Cutoff::default()).await.unwrap();
    let timeout = Duration::from_millis(1500);
    let guard = Guard::builder(
        Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
        store.clone(),
    )
    .store_timeout(timeout)
    .build()
    .unwrap();
    let token = guard.issue(&sub, &()).await.unwrap();
    guard.clear_cache();

    proxy.set_silent(true);
    let started = Instant::now();
    let verdict = guard.validate::<()>(&token).await;
    let waited = started.elapsed();
    assert!(
        matches!(&verdict, Err(e) if e.code() == "store_unavailable")
            && waited < timeout + Duration::from_millis(500),
        "validation on a silent PostgreSQL: {verdict:?} after {waited:?}"
    );
    let started = Instant::now();
    let revoked = guard.bump_version(&sub).await;
    let waited = started.elapsed();
    assert!(
        revoked.is_err() && waited < timeout + Duration::from_millis(500),
        "revocation on a silent PostgreSQL: {revoked:?} after {waited:?}"
    );
    let started = Instant::now();
    let res = tokio::time::timeout(
        Duration::from_secs(5),
        jwt_revoke::PostgresStore::connect(&proxy.url(&url)),
    )
    .await;
    let waited = started.elapsed();
    proxy.set_silent(false);
    assert!(
        matches!(res, Ok(Err(_))) && waited < Duration::from_millis(2_800),
        "README Stores: PostgresStore::connect waits at most its 2 s acquire timeout; \
         through a silent path: {:?} after {waited:?}",
        res.map(|r| r.map(|_| ()))
    );
}

/// A store over a PostgreSQL schema of its own (the pool's `search_path`)
/// where nothing was migrated, and the schema's name.
async fn unmigrated_postgres() -> (PostgresStore, String) {
    use std::str::FromStr;
    let url = common::server_url("POSTGRES_URL");
    let schema = common::unique("jr_bare").replace('-', "_");
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    (PostgresStore::new(pool), schema)
}

#[tokio::test]
async fn check_and_every_call_name_the_missing_schema_until_migrate_runs() {
    let (store, schema) = unmigrated_postgres().await;
    let message = store.check().await.unwrap_err().to_string();
    assert!(
        message.contains(
            "tables jwt_revoke_cutoffs, jwt_revoke_global, jwt_revoke_sessions do not exist: \
             run PostgresStore::migrate(), or apply PostgresStore::SCHEMA in your migrations"
        ),
        "{message}"
    );
    // A call fails (503 through the guard), its message naming the table,
    // PostgreSQL's error (SQLSTATE 42P01) as its source.
    let err = store.load("alice").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("table jwt_revoke_cutoffs does not exist")
            && message.contains("PostgresStore::migrate()"),
        "{message}"
    );
    assert!(std::error::Error::source(err.inner()).is_some());
    let message = store.load_global().await.unwrap_err().to_string();
    assert!(message.contains("table jwt_revoke_global"), "{message}");

    store.migrate().await.unwrap();
    store.check().await.unwrap();

    // A table from an older schema: the column is named, by `check` and
    // by the calls that need it.
    sqlx::query("ALTER TABLE jwt_revoke_sessions DROP COLUMN not_before_seen")
        .execute(store.pool())
        .await
        .unwrap();
    let message = store.check().await.unwrap_err().to_string();
    assert!(
        message.contains("column jwt_revoke_sessions.not_before_seen does not exist"),
        "{message}"
    );
    let message = jwt_revoke::SessionStore::list_sessions(&store, "alice", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("not_before_seen"), "{message}");

    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(store.pool())
        .await
        .unwrap();
}
