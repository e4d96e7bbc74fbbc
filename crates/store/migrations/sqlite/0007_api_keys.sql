-- API keys: long-lived bearer credentials of a user, for integrations. Stored as digests.
CREATE TABLE api_keys (
    id           TEXT       PRIMARY KEY,
    digest       TEXT     NOT NULL UNIQUE,
    user_uid     TEXT       NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    description  TEXT     NOT NULL,
    read_only    INTEGER    NOT NULL,
    created_at   INTEGER      NOT NULL
);
