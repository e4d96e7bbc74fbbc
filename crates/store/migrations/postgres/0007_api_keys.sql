-- API keys: long-lived bearer credentials of a user, for integrations. Stored as digests.
CREATE TABLE api_keys (
    id           UUID       PRIMARY KEY,
    digest       TEXT     NOT NULL UNIQUE,
    user_uid     UUID       NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    description  TEXT     NOT NULL,
    read_only    BOOLEAN    NOT NULL,
    created_at   TIMESTAMPTZ      NOT NULL
);
