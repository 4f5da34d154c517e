//! Issue, validate and revoke tokens with the in-memory store.
//!
//! Run: `cargo run --example quickstart`

use jwt_revoke::{Algorithm, Cutoff, Guard, Keys, MemoryStore};
use serde::{Deserialize, Serialize};

/// The application's own claims, carried next to `sub`, `iat`, `exp`, `ver`.
#[derive(Debug, Serialize, Deserialize)]
struct AppClaims {
    role: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), jwt_revoke::Error> {
    // The host's user table; here an in-memory store.
    let store = MemoryStore::new();
    store.insert("user-42", Cutoff::default());

    let keys = Keys::hmac(Algorithm::HS256, b"use a long random secret in production!")?;
    let guard = Guard::builder(keys, store).build()?;

    // Login: mint a token.
    let laptop = guard
        .issue(
            "user-42",
            &AppClaims {
                role: "admin".into(),
            },
        )
        .await?;
    let phone = guard
        .issue(
            "user-42",
            &AppClaims {
                role: "admin".into(),
            },
        )
        .await?;

    // Every request: validate (signature + claims + cached cutoff).
    let verified = guard.validate::<AppClaims>(&laptop).await?;
    println!(
        "laptop token ok: sub={} ver={:?} role={}",
        verified.sub(),
        verified.version(),
        verified.claims().role
    );

    // Password change / "log out everywhere": one write.
    let cutoff = guard.bump_version("user-42").await?;
    println!("bumped to version {}", cutoff.version);

    for (name, token) in [("laptop", &laptop), ("phone", &phone)] {
        match guard.validate::<AppClaims>(token).await {
            Ok(_) => println!("{name}: still valid (unexpected)"),
            Err(e) => println!(
                "{name}: rejected: {e} (code {}, HTTP {})",
                e.code(),
                e.status()
            ),
        }
    }

    // A fresh login works at once.
    let fresh = guard
        .issue(
            "user-42",
            &AppClaims {
                role: "admin".into(),
            },
        )
        .await?;
    let v = guard.validate::<AppClaims>(&fresh).await?;
    println!("new token ok: ver={:?}", v.version());
    Ok(())
}
