//! The cutoff rule: pure logic, no I/O.
//!
//! A subject's [`Cutoff`] says which of its tokens are still accepted. Cutoffs
//! only move forward: [`Cutoff::merge`] is a component-wise maximum, which makes
//! the set of cutoffs a join-semilattice. Applying the same updates in any
//! order, any number of times, gives the same result, so a slow store read that
//! races a revocation can never bring a revoked token back.

use serde::{Deserialize, Serialize};

/// Per-subject revocation state, stored by the host application.
///
/// A token of the subject is accepted only if `token.ver >= version` and
/// `token.iat >= not_before`.
///
/// ```
/// use jwt_revoke::Cutoff;
///
/// let a = Cutoff { version: 3, not_before: 100 };
/// let b = Cutoff { version: 2, not_before: 500 };
/// assert_eq!(a.merge(b), Cutoff { version: 3, not_before: 500 });
/// assert_eq!(Cutoff::default(), Cutoff { version: 0, not_before: 0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Cutoff {
    /// The subject's current token version. Tokens stamped with a lower `ver`
    /// are revoked. Bumped by [`CutoffStore::bump_version`](crate::CutoffStore::bump_version).
    pub version: u64,
    /// The earliest `iat` (Unix seconds) still accepted. Tokens issued earlier
    /// are revoked. Raised by [`CutoffStore::revoke_before`](crate::CutoffStore::revoke_before).
    pub not_before: i64,
}

/// Why a token was revoked; carried by [`Error::Revoked`](crate::Error::Revoked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevokedReason {
    /// `token.ver` is lower than the subject's current version.
    Version,
    /// `token.iat` is earlier than the subject's `not_before`.
    NotBefore,
    /// `token.iat` is earlier than the global `not_before`.
    Global,
    /// The token's session (`sid`) is revoked
    /// ([`Error::SessionRevoked`](crate::Error::SessionRevoked)).
    Session,
}

impl RevokedReason {
    /// A stable lower-case name: `version`, `not_before`, `global` or
    /// `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokedReason::Version => "version",
            RevokedReason::NotBefore => "not_before",
            RevokedReason::Global => "global",
            RevokedReason::Session => "session",
        }
    }
}

impl std::fmt::Display for RevokedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Cutoff {
    /// A cutoff with the given version and `not_before`.
    pub const fn new(version: u64, not_before: i64) -> Self {
        Cutoff {
            version,
            not_before,
        }
    }

    /// Component-wise maximum. Commutative, associative and idempotent, so
    /// merging updates in any order gives the same cutoff, never an older one.
    #[must_use]
    pub fn merge(self, other: Cutoff) -> Cutoff {
        Cutoff {
            version: self.version.max(other.version),
            not_before: self.not_before.max(other.not_before),
        }
    }

    /// `true` when `self` is at least as strict as `other` in both components.
    pub fn dominates(&self, other: &Cutoff) -> bool {
        self.version >= other.version && self.not_before >= other.not_before
    }

    /// The cutoff after `revoke_before(at)`: every token with `iat <= at` is
    /// revoked, so `not_before` becomes `max(not_before, at + 1)`.
    ///
    /// `not_before` is the earliest `iat` still accepted: a token minted in the
    /// same second as the revocation must die too, hence `at + 1`.
    #[must_use]
    pub fn revoked_before(self, at: i64) -> Cutoff {
        Cutoff {
            version: self.version,
            not_before: self.not_before.max(at.saturating_add(1)),
        }
    }

    /// This cutoff as the first state of a subject's record created at `now`
    /// (Unix seconds, the store's clock): `not_before` is raised to at least
    /// `now + 2`. A token issued before the record existed has `iat` at
    /// most `now + 1` (a login in the second of a revocation is stamped one
    /// second ahead, and never more), so a record that was deleted or lost
    /// and is created again rejects every token of the old one, whatever
    /// version it starts from, even within the same second: no earlier
    /// state's revoked token comes back (see the crate's rule on lost
    /// rows). A login in the second of the creation waits for the next one
    /// ([`Error::RetryLater`](crate::Error::RetryLater)), and is then
    /// stamped `iat = now + 1`.
    ///
    /// ```
    /// use jwt_revoke::Cutoff;
    ///
    /// assert_eq!(Cutoff::default().created(1_000), Cutoff::new(0, 1_002));
    /// assert_eq!(Cutoff::new(2, 5_000).created(1_000), Cutoff::new(2, 5_000));
    /// ```
    #[must_use]
    pub fn created(self, now: i64) -> Cutoff {
        self.revoked_before(now.saturating_add(1))
    }

    /// The cutoff after `bump_version`: the version plus one (saturating).
    #[must_use]
    pub fn bumped(self) -> Cutoff {
        Cutoff {
            version: self.version.saturating_add(1),
            not_before: self.not_before,
        }
    }

    /// Checks a token against this cutoff and the global `not_before`.
    ///
    /// `ver` is `None` for foreign tokens (minted by an identity provider), which
    /// are checked against the timestamp cutoffs only. The version is checked
    /// first because it is the mechanism that does not depend on clocks.
    pub fn check(
        &self,
        ver: Option<u64>,
        iat: i64,
        global_not_before: i64,
    ) -> Result<(), RevokedReason> {
        if let Some(ver) = ver
            && ver < self.version
        {
            return Err(RevokedReason::Version);
        }
        if iat < self.not_before {
            return Err(RevokedReason::NotBefore);
        }
        if iat < global_not_before {
            return Err(RevokedReason::Global);
        }
        Ok(())
    }

    /// `true` when a token with this `ver` and `iat` is revoked.
    pub fn is_revoked(&self, ver: Option<u64>, iat: i64, global_not_before: i64) -> bool {
        self.check(ver, iat, global_not_before).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_second_logout_kills_token_minted_that_second() {
        let c = Cutoff::default().revoked_before(1_000);
        assert_eq!(c.not_before, 1_001);
        assert_eq!(c.check(Some(0), 1_000, 0), Err(RevokedReason::NotBefore));
        assert_eq!(c.check(Some(0), 1_001, 0), Ok(()));
    }

    #[test]
    fn revoked_before_never_moves_back_and_saturates() {
        let c = Cutoff::new(0, 500).revoked_before(10);
        assert_eq!(c.not_before, 500);
        assert_eq!(
            Cutoff::default().revoked_before(i64::MAX).not_before,
            i64::MAX
        );
        assert_eq!(Cutoff::new(u64::MAX, 0).bumped().version, u64::MAX);
    }

    #[test]
    fn reasons_in_order() {
        let c = Cutoff::new(5, 100);
        assert_eq!(c.check(Some(4), 50, 0), Err(RevokedReason::Version));
        assert_eq!(c.check(Some(5), 50, 0), Err(RevokedReason::NotBefore));
        assert_eq!(c.check(Some(5), 150, 200), Err(RevokedReason::Global));
        assert_eq!(c.check(None, 150, 0), Ok(()));
        assert_eq!(c.check(Some(6), 150, 150), Ok(()));
    }
}
