-- jwt-revoke cutoffs for PostgreSQL. Idempotent: safe to run at every start.
-- One row per subject (user), never one per token.
-- Serialize concurrent migrations (several instances starting at once):
-- concurrent CREATE TABLE IF NOT EXISTS can otherwise collide in pg_type.
-- The lock is released when this script's implicit transaction ends.
SELECT pg_advisory_xact_lock(7245030171);
CREATE TABLE IF NOT EXISTS jwt_revoke_cutoffs (
    sub           TEXT PRIMARY KEY,
    token_version BIGINT NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    not_before    BIGINT NOT NULL DEFAULT 0
);
-- The global cutoff: at most one row.
CREATE TABLE IF NOT EXISTS jwt_revoke_global (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    not_before BIGINT NOT NULL
);
-- Sessions (logins, refresh tokens): one row per session, never one per
-- token. `generation` counts the rotations of the refresh token;
-- `revoked_at` is NULL while the session is live.
CREATE TABLE IF NOT EXISTS jwt_revoke_sessions (
    id           TEXT PRIMARY KEY,
    sub          TEXT NOT NULL,
    generation   BIGINT NOT NULL DEFAULT 0 CHECK (generation >= 0),
    version      BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
-- Listing a subject's sessions, oldest first.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_sub ON jwt_revoke_sessions (sub, created_at);
-- Purging expired sessions.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_expires ON jwt_revoke_sessions (expires_at);
