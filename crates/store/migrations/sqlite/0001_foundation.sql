-- Foundation: installation facts, organizations, users, tokens, failed logins, async actions.
-- Timestamps are Unix microseconds (UTC); UUIDs are lower-case hyphenated text.

CREATE TABLE installation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    uid         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE organizations (
    uid         TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('Provider', 'Reseller', 'Company')),
    parent_uid  TEXT    REFERENCES organizations(uid),
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX organizations_one_provider ON organizations(kind) WHERE kind = 'Provider';
CREATE INDEX organizations_parent ON organizations(parent_uid);

CREATE TABLE users (
    uid               TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    name_key          TEXT    NOT NULL UNIQUE,
    role              TEXT    NOT NULL,
    organization_uid  TEXT    NOT NULL REFERENCES organizations(uid),
    password_hash     TEXT    NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL
);

CREATE TABLE tokens (
    digest      TEXT    PRIMARY KEY,
    user_uid    TEXT    NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    read_only   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_uid);
CREATE INDEX tokens_expiry ON tokens(expires_at);

CREATE TABLE login_failures (
    key        TEXT    NOT NULL,
    failed_at  INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, failed_at);

CREATE TABLE async_actions (
    user_uid               TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    action_name            TEXT    NOT NULL,
    fingerprint            TEXT    NOT NULL,
    status                 TEXT    NOT NULL,
    request_body           TEXT,
    query_parameters       TEXT    NOT NULL,
    response_status        INTEGER,
    response_content_type  TEXT,
    response_body          BLOB,
    created_at             INTEGER NOT NULL,
    finished_at            INTEGER,
    expires_at             INTEGER NOT NULL,
    PRIMARY KEY (user_uid, id)
);
CREATE INDEX async_actions_expiry ON async_actions(expires_at);
