-- API keys for OTLP ingest. Only a SHA-256 of each key is kept; the key is shown once.

CREATE TABLE api_keys (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE COLLATE NOCASE,
    key_hash           TEXT NOT NULL UNIQUE,
    -- records (spans + log records + metric points) per second; 0 = unlimited
    records_per_second INTEGER NOT NULL DEFAULT 0,
    created_ns         INTEGER NOT NULL,
    revoked_ns         INTEGER
);
