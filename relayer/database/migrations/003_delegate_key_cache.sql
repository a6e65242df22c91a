-- Delegate key -> account resolution cache (re-verified on chain on every use).
CREATE TABLE IF NOT EXISTS delegate_key_cache (
    public_key TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    owner      TEXT NOT NULL,
    cached_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE delegate_key_cache ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ NOT NULL
    DEFAULT now() + INTERVAL '24 hours';

CREATE INDEX IF NOT EXISTS idx_delegate_key_cache_expires_at ON delegate_key_cache (expires_at);
