-- Beyond upstream: per-memory forget (tombstones), metadata tags with tag-filtered recall, and TTLs.

-- Tags are unencrypted labels the caller chose (never derived from the memory's text). The GIN index serves
-- recall's all-of filter (tags @> $filter).
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS tags TEXT[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS idx_vector_entries_tags ON vector_entries USING gin (tags);
-- expires_at (migration 005) now carries the memory's TTL; the expiry sweep walks this index.
CREATE INDEX IF NOT EXISTS idx_vector_entries_expires_at ON vector_entries (expires_at) WHERE expires_at IS NOT NULL;

-- A queued remember carries both until its index row is written.
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS tags TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;

-- One row per forgotten memory, written in the transaction that deletes its index row. It answers a repeated
-- forget with the first answer, stops a remember job that is still running from indexing the memory again,
-- and stops /api/restore from re-indexing the blob. Pruned after FORGET_TOMBSTONE_RETENTION_SECS.
CREATE TABLE IF NOT EXISTS forgotten_memories (
    memory_id    TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    blob_id      TEXT,  -- NULL when the memory was forgotten before its upload finished
    reason       TEXT NOT NULL CHECK (reason IN ('forgotten', 'expired')),
    forgotten_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_forgotten_memories_owner_blob ON forgotten_memories (owner, blob_id);
CREATE INDEX IF NOT EXISTS idx_forgotten_memories_forgotten_at ON forgotten_memories (forgotten_at);
