-- jwt-revoke cutoffs for SQLite. Idempotent: safe to run at every start.
-- One row per subject (user), never one per token.
CREATE TABLE IF NOT EXISTS jwt_revoke_cutoffs (
    sub           TEXT PRIMARY KEY NOT NULL,
    token_version INTEGER NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    not_before    INTEGER NOT NULL DEFAULT 0
);
-- The global cutoff: at most one row.
CREATE TABLE IF NOT EXISTS jwt_revoke_global (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    not_before INTEGER NOT NULL
);
-- Sessions (logins, refresh tokens): one row per session, never one per
-- token. `generation` counts the rotations of the refresh token;
-- `revoked_at` is NULL while the session is live.
CREATE TABLE IF NOT EXISTS jwt_revoke_sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    sub          TEXT NOT NULL,
    generation   INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    version      INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
-- Listing a subject's sessions, oldest first.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_sub ON jwt_revoke_sessions (sub, created_at);
-- Purging expired sessions.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_expires ON jwt_revoke_sessions (expires_at);
