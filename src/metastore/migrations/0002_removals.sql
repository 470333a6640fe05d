-- Files taken out of the catalog (by retention; later by compaction swaps), in the order they
-- went: query nodes follow this feed to drop the files' blocks, and the maintenance node
-- deletes each object from the bucket once no query can still be reading it.
CREATE TABLE catalog_removals (
    id BIGSERIAL PRIMARY KEY,
    path TEXT NOT NULL,
    removed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- when the object was deleted from the bucket (NULL: not yet)
    deleted_at TIMESTAMPTZ
);
CREATE INDEX catalog_removals_pending ON catalog_removals (removed_at) WHERE deleted_at IS NULL;
