-- Login throttle as one counter row per (user name, address): an attempt is reserved with a
-- single atomic UPSERT before the password is checked, so parallel attempts cannot all pass
-- the check. Replaces the append-only list of failures, which was counted and then inserted.
CREATE TABLE login_attempts (
    key           TEXT    PRIMARY KEY,
    attempts      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL
);
CREATE INDEX login_attempts_window ON login_attempts(window_start);

DROP TABLE login_failures;

-- One row /health rewrites to find out whether the database still takes writes.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY,
    probed_at  INTEGER NOT NULL
);
