//! [`CutoffStore`](crate::CutoffStore) and
//! [`SessionStore`](crate::SessionStore) implementations shipped with the
//! crate.

pub mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod users;

use crate::session::Session;
use crate::store::StoreError;

/// Sorts sessions as `list_sessions` returns them: oldest first, ties in
/// `created_at` by id compared bytewise (whatever a database's collation).
pub(crate) fn oldest_first(sessions: &mut [Session]) {
    sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
}

/// Whether a store can hold `sub`. A NUL byte cannot be stored in a
/// PostgreSQL `TEXT` column, and every shipped store refuses it alike (a
/// validly signed token may still carry one): such a subject is unknown
/// (`load` returns `Ok(None)`, so the guard answers `unknown_subject`),
/// and writing it is an error. Behaviour does not change with the backend.
pub(crate) fn storable(sub: &str) -> bool {
    !sub.as_bytes().contains(&0)
}

/// The error of a write for a subject that no store can hold.
pub(crate) fn check_storable(sub: &str) -> Result<(), StoreError> {
    if storable(sub) {
        Ok(())
    } else {
        Err(StoreError::msg(
            "subject contains a NUL byte, which no cutoff store holds",
        ))
    }
}
