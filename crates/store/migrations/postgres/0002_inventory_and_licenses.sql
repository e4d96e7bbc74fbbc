-- Managed servers, what is installed on them (and on the console), license history, agents.

CREATE TABLE managed_servers (
    uid               UUID        PRIMARY KEY,
    kind              TEXT        NOT NULL,
    name              TEXT        NOT NULL,
    organization_uid  UUID        NOT NULL REFERENCES organizations(uid),
    agent_uid         UUID,
    created_at        TIMESTAMPTZ NOT NULL,
    last_seen_at      TIMESTAMPTZ,
    reported          JSONB       NOT NULL DEFAULT 'null'
);
CREATE INDEX managed_servers_kind ON managed_servers(kind, uid);
CREATE INDEX managed_servers_org ON managed_servers(organization_uid);

CREATE TABLE license_slots (
    target_uid  UUID        PRIMARY KEY,
    kind        TEXT        NOT NULL,
    document    JSONB       NOT NULL,
    revision    BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX license_slots_kind ON license_slots(kind);

CREATE TABLE license_events (
    id          BIGSERIAL   PRIMARY KEY,
    target_uid  UUID        NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    detail      JSONB       NOT NULL
);
CREATE INDEX license_events_target ON license_events(target_uid, id);

CREATE TABLE agents (
    uid               UUID        PRIMARY KEY,
    organization_uid  UUID        NOT NULL REFERENCES organizations(uid),
    name              TEXT        NOT NULL,
    token_digest      TEXT        NOT NULL UNIQUE,
    created_at        TIMESTAMPTZ NOT NULL,
    last_seen_at      TIMESTAMPTZ
);

CREATE TABLE enrollment_tokens (
    digest            TEXT        PRIMARY KEY,
    organization_uid  UUID        NOT NULL REFERENCES organizations(uid),
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL
);
