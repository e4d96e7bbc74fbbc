-- Usage samples from agents, the points weights table, monthly reports and their settings.

CREATE TABLE usage_samples (
    server_uid        TEXT    NOT NULL,
    organization_uid  TEXT    NOT NULL,
    workload_type     TEXT    NOT NULL,
    platform          TEXT    NOT NULL,
    sampled_at        INTEGER NOT NULL,
    used_count        INTEGER NOT NULL,
    new_count         INTEGER NOT NULL,
    rental_count      INTEGER NOT NULL,
    PRIMARY KEY (server_uid, organization_uid, workload_type, platform, sampled_at)
);
CREATE INDEX usage_samples_time ON usage_samples(sampled_at);

CREATE TABLE points_weights (
    product        TEXT NOT NULL,
    edition        TEXT NOT NULL,
    workload_type  TEXT NOT NULL,
    weight         REAL NOT NULL,
    PRIMARY KEY (product, edition, workload_type)
);

-- Report ids are handed out per (owner, month) before the report is built, because the
-- document carries its own id; a regenerated month keeps its id.
CREATE TABLE report_ids (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_uid  TEXT    NOT NULL,
    month      TEXT    NOT NULL,
    UNIQUE (owner_uid, month)
);

CREATE TABLE reports (
    id            INTEGER PRIMARY KEY REFERENCES report_ids(id),
    owner_uid     TEXT    NOT NULL,
    month         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    generated_at  INTEGER NOT NULL,
    approved_at   INTEGER,
    document      TEXT    NOT NULL,
    UNIQUE (owner_uid, month)
);

CREATE TABLE report_settings (
    owner_uid     TEXT    PRIMARY KEY,
    auto_approve  INTEGER NOT NULL
);
