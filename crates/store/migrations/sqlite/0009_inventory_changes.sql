-- Which targets each inventory generation changed, written in the same transaction as the change
-- and the generation bump. A node holding a cached view at generation G reads the entries after G
-- and refreshes only those targets. Old entries are pruned; a node whose generation is older
-- than the oldest entry left rebuilds its view.
CREATE TABLE inventory_changes (
    generation  BIGINT  NOT NULL,
    target_uid  TEXT    NOT NULL,
    PRIMARY KEY (generation, target_uid)
);
