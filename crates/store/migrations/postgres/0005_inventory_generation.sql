-- A counter bumped by every change to managed servers and license slots, in the same
-- transaction as the change. Readers compare it to decide whether cached views are current.
CREATE TABLE inventory_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT  NOT NULL
);
INSERT INTO inventory_generation (id, generation) VALUES (1, 0);
