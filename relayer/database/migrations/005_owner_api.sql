-- The owner-scoped read API (GET /v1/owners/{owner}/memories) and owner bearer tokens (POST /v1/owner-tokens).

-- Upstream's per-memory columns for the listing. end_epoch / expires_at stay NULL until the Walrus end epoch
-- is recorded for a memory (served as "active", as upstream serves a row not yet synced).
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS agent_id TEXT;
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS package_id TEXT;
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS end_epoch INTEGER;
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;

-- The id of the transaction that last wrote the row. The listing pages in (row_version, id) order below a
-- horizon: the oldest transaction still running when the walk began (pg_snapshot_xmin). Every row below it
-- is committed and every later write lands above it, so a walk at one snapshot_version neither skips nor
-- repeats a row however writes interleave (an updated_at keyset would skip rows whose transaction commits
-- after a later one: now() is the transaction's start, not its commit).
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS row_version xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE OR REPLACE FUNCTION vector_entries_stamp_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_version := pg_current_xact_id();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS vector_entries_row_version ON vector_entries;
CREATE TRIGGER vector_entries_row_version BEFORE UPDATE ON vector_entries
    FOR EACH ROW EXECUTE FUNCTION vector_entries_stamp_row_version();

CREATE INDEX IF NOT EXISTS idx_vector_entries_owner_row_version ON vector_entries (owner, row_version, id);

-- Owner bearer tokens: only the SHA-256 of each token is stored, so a database dump grants nothing.
CREATE TABLE IF NOT EXISTS owner_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    owner       TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    permissions TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS idx_owner_tokens_expires_at ON owner_tokens (expires_at);
