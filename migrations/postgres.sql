-- jwt-revoke cutoffs for PostgreSQL. Idempotent: safe to run at every start.
-- One row per subject (user), never one per token.
-- Serialize concurrent migrations (several instances starting at once):
-- concurrent CREATE TABLE IF NOT EXISTS can otherwise collide in pg_type.
-- The lock is released when this script's implicit transaction ends.
SELECT pg_advisory_xact_lock(7245030171);
-- A row created later than its subject's tokens rejects them: a new row's
-- `not_before` defaults to two seconds after its creation, so a subject
-- deleted and created again (or a row inserted by hand) never accepts a
-- token issued before it existed.
CREATE TABLE IF NOT EXISTS jwt_revoke_cutoffs (
    sub           TEXT PRIMARY KEY,
    token_version BIGINT NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    not_before    BIGINT NOT NULL DEFAULT (FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 2)
);
-- The global cutoff: at most one row, created when missing as a global
-- revocation at that moment (nothing issued before the row existed is
-- accepted): by a migration, at the second it runs; by a read that finds
-- it gone later, two seconds ahead. A lost row never reads as "none".
CREATE TABLE IF NOT EXISTS jwt_revoke_global (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    not_before BIGINT NOT NULL
);
INSERT INTO jwt_revoke_global (id, not_before)
VALUES (1, FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT)
ON CONFLICT (id) DO NOTHING;
-- Repairs never re-arm a token: a version never goes down, and
-- `not_before` goes down only to lift a lock that lies in the future (to
-- the second after now at the lowest).
CREATE OR REPLACE FUNCTION jwt_revoke_cutoffs_monotone() RETURNS trigger AS $$
BEGIN
    IF NEW.token_version < OLD.token_version
       OR (NEW.not_before < OLD.not_before
           AND NEW.not_before < FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 1) THEN
        RAISE EXCEPTION 'jwt-revoke: a cutoff never goes back (token_version never decreases; not_before decreases only down to now + 1)'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION jwt_revoke_global_monotone() RETURNS trigger AS $$
BEGIN
    IF NEW.not_before < OLD.not_before
       AND NEW.not_before < FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 1 THEN
        RAISE EXCEPTION 'jwt-revoke: the global cutoff never goes back (not_before decreases only down to now + 1)'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jwt_revoke_cutoffs_monotone'
                   AND tgrelid = 'jwt_revoke_cutoffs'::regclass) THEN
        CREATE TRIGGER jwt_revoke_cutoffs_monotone BEFORE UPDATE ON jwt_revoke_cutoffs
            FOR EACH ROW EXECUTE FUNCTION jwt_revoke_cutoffs_monotone();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jwt_revoke_global_monotone'
                   AND tgrelid = 'jwt_revoke_global'::regclass) THEN
        CREATE TRIGGER jwt_revoke_global_monotone BEFORE UPDATE ON jwt_revoke_global
            FOR EACH ROW EXECUTE FUNCTION jwt_revoke_global_monotone();
    END IF;
END
$$;
-- Sessions (logins, refresh tokens): one row per session, never one per
-- token. `generation` counts the rotations of the refresh token;
-- `revoked_at` is NULL while the session is live; `not_before_seen` is the
-- highest timestamp cutoff (the subject's or the global) in force at the
-- login, as read from this database: a later, higher one ends the session.
CREATE TABLE IF NOT EXISTS jwt_revoke_sessions (
    id              TEXT PRIMARY KEY,
    sub             TEXT NOT NULL,
    generation      BIGINT NOT NULL DEFAULT 0 CHECK (generation >= 0),
    version         BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    not_before_seen BIGINT NOT NULL
);
-- Listing a subject's sessions, oldest first.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_sub ON jwt_revoke_sessions (sub, created_at);
-- Purging expired sessions.
CREATE INDEX IF NOT EXISTS jwt_revoke_sessions_expires ON jwt_revoke_sessions (expires_at);
