-- Durable remember / analyze jobs. A row is the whole state of one write: the worker that claims
-- it resumes at the recorded stage (upload only while blob_id is unset; the vector upsert is
-- idempotent on the job id).

-- Upstream's shape (status values and indexes are part of the observable API).
CREATE TABLE IF NOT EXISTS remember_jobs (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    namespace  TEXT NOT NULL DEFAULT 'default',
    status     TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'uploaded', 'done', 'failed')),
    blob_id    TEXT,
    error_msg  TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_remember_jobs_owner ON remember_jobs (owner);
CREATE INDEX IF NOT EXISTS idx_remember_jobs_status ON remember_jobs (status);
CREATE INDEX IF NOT EXISTS idx_remember_jobs_owner_status_updated
    ON remember_jobs (owner, status, updated_at DESC);

-- Ours: the queue itself (upstream keeps it in apalis.jobs).
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'remember'
    CHECK (kind IN ('remember', 'analyze'));
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS idempotency_key TEXT;
-- The Seal ciphertext of the memory (never plaintext); cleared once the job is final.
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS ciphertext BYTEA;
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS embedding vector(1536);
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS importance REAL NOT NULL DEFAULT 0.5;
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS object_id TEXT;
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS agent_id TEXT;
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0
    CHECK (attempts >= 0);
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS lease_owner TEXT;
-- While leased: when the lease expires. While released for a retry: not claimable before it.
ALTER TABLE remember_jobs ADD COLUMN IF NOT EXISTS lease_until TIMESTAMPTZ;

CREATE UNIQUE INDEX IF NOT EXISTS idx_remember_jobs_owner_idempotency_key
    ON remember_jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The claim query's scan: only unfinished rows, oldest first.
CREATE INDEX IF NOT EXISTS idx_remember_jobs_claimable
    ON remember_jobs (created_at) WHERE status IN ('pending', 'running', 'uploaded');
