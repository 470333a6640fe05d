-- The catalog of Parquet files in the object store, and the queue sequences whose records
-- they hold (a redelivered message whose sequence is here is already indexed).
CREATE TABLE catalog_files (
    id BIGSERIAL PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    signal TEXT NOT NULL,
    node TEXT NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE queue_indexed (
    stream TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (stream, first_seq)
);
