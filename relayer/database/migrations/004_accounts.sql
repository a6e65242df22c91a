-- Written by the indexer from AccountCreated events; the relayer never reads it for auth.
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    owner      TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_accounts_owner ON accounts (owner);

-- Indexer progress, e.g. key 'event_cursor' -> '{"txDigest": ..., "eventSeq": ...}'.
CREATE TABLE IF NOT EXISTS indexer_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
