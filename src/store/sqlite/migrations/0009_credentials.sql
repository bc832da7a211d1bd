-- 0009: provider credentials sealed under the master key (AES-256-GCM, record id as associated
-- data), and the check value that tells a wrong master key before anything is written.

CREATE TABLE provider_credentials (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    base_url    TEXT,
    sealed      BLOB NOT NULL,           -- nonce (12 bytes) || ciphertext || tag (16 bytes)
    fingerprint TEXT NOT NULL,           -- sha256: + 12 hex digits of the key
    label       TEXT,
    created_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX provider_credentials_by_provider ON provider_credentials (provider, created_ms);

CREATE TABLE secrets_meta (
    name  TEXT PRIMARY KEY,              -- 'check': a known text sealed under the master key
    value BLOB NOT NULL
) STRICT;
