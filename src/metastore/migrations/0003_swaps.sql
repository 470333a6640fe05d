-- Compaction in a cluster: a merged file replaces several in one transaction. The merged
-- file is marked (its node's follower must read it like any other node's file), and each
-- removal names the file that replaced it, so a query node applies both in one index commit.
ALTER TABLE catalog_files ADD COLUMN compacted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE catalog_removals ADD COLUMN replaced_by BIGINT;
