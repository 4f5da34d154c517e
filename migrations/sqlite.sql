-- jwt-revoke cutoffs for SQLite. Idempotent: safe to run at every start.
-- One row per subject (user), never one per token.
--
-- A row created later than its subject's tokens rejects them: a new row's
-- `not_before` defaults to two seconds after its creation, so a subject
-- deleted and created again (or a row inserted by hand) never accepts a
-- token issued before it existed.
CREATE TABLE IF NOT EXISTS jwt_revoke_cutoffs (
    sub           TEXT PRIMARY KEY NOT NULL,
    token_version INTEGER NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    not_before    INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER) + 2)
);
-- Repairs never re-arm a token: a version never goes down, and
-- `not_before` goes down only to lift a lock that lies in the future (to
-- the second after now at the lowest).
CREATE TRIGGER IF NOT EXISTS jwt_revoke_cutoffs_monotone
BEFORE UPDATE OF token_version, not_before ON jwt_revoke_cutoffs
WHEN NEW.token_version < OLD.token_version
  OR (NEW.not_before < OLD.not_before
      AND NEW.not_before < CAST(strftime('%s', 'now') AS INTEGER) + 1)
BEGIN
    SELECT RAISE(ABORT, 'jwt-revoke: a cutoff never goes back (token_version never decreases; not_before decreases only down to now + 1)');
END;
-- The global cutoff: at most one row, created when missing as a global
-- revocation at that moment (nothing issued before the row existed is
-- accepted): by a migration, at the second it runs; by a read that finds
-- it gone later, two seconds ahead. A lost row never reads as "none".
CREATE TABLE IF NOT EXISTS jwt_revoke_global (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    not_before INTEGER NOT NULL
);
INSERT INTO jwt_revoke_global (id, not_before)
VALUES (1, CAST(strftime('%s', 'now') AS INTEGER))
ON CONFLICT (id) DO NOTHING;
CREATE TRIGGER IF NOT EXISTS jwt_revoke_global_monotone
BEFORE UPDATE OF not_before ON jwt_revoke_global
WHEN NEW.not_before < OLD.not_before
  AND NEW.not_before < CAST(strftime('%s', 'now') AS INTEGER) + 1
BEGIN
    SELECT RAISE(ABORT, 'jwt-revoke: the global cutoff never goes back (not_before decreases only down to now + 1)');
END;
-- Sessions (logins, refresh tokens): one row per session, never one per
-- token. `generation` counts the rotations of the refresh token;
-- `revoked_at` is NULL while the session is live; `not_before_seen` is the
-- highest timestamp cutoff (the subject's or the global) in force at the
-- login, as read from this database: a later, higher one ends the session.
CREATE TABLE IF NOT EXISTS jwt_revoke_sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    sub             TEXT NOT NULL,
    generation      INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    version         INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    not_before_seen INTEGER NOT NULL
);
-- Listing a subject's sessions, oldest first.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_sub ON jwt_revoke_sessions (sub, created_at);
-- Purging expired sessions.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_expires ON jwt_revoke_sessions (expires_at);
