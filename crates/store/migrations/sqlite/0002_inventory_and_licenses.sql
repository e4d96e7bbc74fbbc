-- Managed servers, what is installed on them (and on the console), license history, agents.

CREATE TABLE managed_servers (
    uid               TEXT    PRIMARY KEY,
    kind              TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    organization_uid  TEXT    NOT NULL REFERENCES organizations(uid),
    agent_uid         TEXT,
    created_at        INTEGER NOT NULL,
    last_seen_at      INTEGER,
    reported          TEXT    NOT NULL DEFAULT 'null'
);
CREATE INDEX managed_servers_kind ON managed_servers(kind, uid);
CREATE INDEX managed_servers_org ON managed_servers(organization_uid);

CREATE TABLE license_slots (
    target_uid  TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX license_slots_kind ON license_slots(kind);

CREATE TABLE license_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target_uid  TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX license_events_target ON license_events(target_uid, id);

CREATE TABLE agents (
    uid               TEXT    PRIMARY KEY,
    organization_uid  TEXT    NOT NULL REFERENCES organizations(uid),
    name              TEXT    NOT NULL,
    token_digest      TEXT    NOT NULL UNIQUE,
    created_at        INTEGER NOT NULL,
    last_seen_at      INTEGER
);

CREATE TABLE enrollment_tokens (
    digest            TEXT    PRIMARY KEY,
    organization_uid  TEXT    NOT NULL REFERENCES organizations(uid),
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
);
