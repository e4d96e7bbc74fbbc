-- Foundation: installation facts, organizations, users, tokens, failed logins, async actions.

CREATE TABLE installation (
    id          INTEGER     PRIMARY KEY CHECK (id = 1),
    uid         UUID        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE organizations (
    uid         UUID        PRIMARY KEY,
    name        TEXT        NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('Provider', 'Reseller', 'Company')),
    parent_uid  UUID        REFERENCES organizations(uid),
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX organizations_one_provider ON organizations(kind) WHERE kind = 'Provider';
CREATE INDEX organizations_parent ON organizations(parent_uid);

CREATE TABLE users (
    uid               UUID        PRIMARY KEY,
    name              TEXT        NOT NULL,
    name_key          TEXT        NOT NULL UNIQUE,
    role              TEXT        NOT NULL,
    organization_uid  UUID        NOT NULL REFERENCES organizations(uid),
    password_hash     TEXT        NOT NULL,
    enabled           BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
    digest      TEXT        PRIMARY KEY,
    user_uid    UUID        NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    kind        TEXT        NOT NULL CHECK (kind IN ('access', 'refresh')),
    read_only   BOOLEAN     NOT NULL,
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_uid);
CREATE INDEX tokens_expiry ON tokens(expires_at);

CREATE TABLE login_failures (
    key        TEXT        NOT NULL,
    failed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, failed_at);

CREATE TABLE async_actions (
    user_uid               UUID        NOT NULL,
    id                     UUID        NOT NULL,
    action_name            TEXT        NOT NULL,
    fingerprint            TEXT        NOT NULL,
    status                 TEXT        NOT NULL,
    request_body           TEXT,
    query_parameters       JSONB       NOT NULL,
    response_status        INTEGER,
    response_content_type  TEXT,
    response_body          BYTEA,
    created_at             TIMESTAMPTZ NOT NULL,
    finished_at            TIMESTAMPTZ,
    expires_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_uid, id)
);
CREATE INDEX async_actions_expiry ON async_actions(expires_at);
