-- MCP's OAuth 2.1 authorization server (relayer/mcp/oauth.py, mcp-helper migration; renumber at merge if needed).

-- Dynamically registered clients (RFC 7591), as registered. A client secret alone grants nothing: a token
-- needs an authorization the owner approved with a delegate-key signature, or a refresh token (hashed below).
CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id   TEXT PRIMARY KEY,
    information JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- An authorization request from /authorize, waiting for the owner's approval (POST /oauth/approve), then
-- its code (only the code's SHA-256 is kept), used at most once.
CREATE TABLE IF NOT EXISTS oauth_authorizations (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scopes                TEXT[] NOT NULL,
    code_challenge        TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    redirect_uri_explicit BOOLEAN NOT NULL,
    state                 TEXT,
    resource              TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    expires_at            TIMESTAMPTZ NOT NULL,
    code_hash             BYTEA UNIQUE CHECK (length(code_hash) = 32),
    owner                 TEXT,
    account_id            TEXT,
    public_key_hex        TEXT,
    approved_at           TIMESTAMPTZ,
    used_at               TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS idx_oauth_authorizations_expires_at ON oauth_authorizations (expires_at);

-- Access and refresh tokens: only their SHA-256. The tokens of one grant (one approval and its refreshes)
-- are revoked together.
CREATE TABLE IF NOT EXISTS oauth_tokens (
    token_hash     BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
    kind           TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    owner          TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    public_key_hex TEXT NOT NULL,
    scopes         TEXT[] NOT NULL,
    resource       TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS idx_oauth_tokens_grant_id ON oauth_tokens (grant_id);
CREATE INDEX IF NOT EXISTS idx_oauth_tokens_expires_at ON oauth_tokens (expires_at);
