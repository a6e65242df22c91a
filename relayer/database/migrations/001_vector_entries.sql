-- The memory index: one row per stored memory. The memory itself is Seal-encrypted on Walrus
-- (blob_id); this table holds only its embedding and bookkeeping, never plaintext.
CREATE EXTENSION IF NOT EXISTS vector;

-- Upstream's original shape, so a database first created by the Rust relayer is accepted as is.
CREATE TABLE IF NOT EXISTS vector_entries (
    id         TEXT PRIMARY KEY,          -- the remember job id (upserts are idempotent on it)
    owner      TEXT NOT NULL,             -- Sui address of the account owner
    blob_id    TEXT NOT NULL,             -- Walrus blob id; not unique (restore may re-index)
    embedding  vector(1536) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Columns upstream added later, plus updated_at for the namespace listing's keyset cursor.
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS blob_size_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS importance REAL NOT NULL DEFAULT 0.5;
ALTER TABLE vector_entries ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE INDEX IF NOT EXISTS idx_vector_entries_owner ON vector_entries (owner);
CREATE INDEX IF NOT EXISTS idx_vector_entries_blob_id ON vector_entries (blob_id);
-- INCLUDE lets stats, quota and the namespace listing run as index-only scans: the heap rows
-- point at 6 KiB TOASTed vectors we never need there.
CREATE INDEX IF NOT EXISTS idx_vector_entries_owner_namespace
    ON vector_entries (owner, namespace) INCLUDE (blob_size_bytes, updated_at);
-- Default parameters (m=16, ef_construction=64), as upstream.
CREATE INDEX IF NOT EXISTS idx_vector_entries_embedding
    ON vector_entries USING hnsw (embedding vector_cosine_ops);
