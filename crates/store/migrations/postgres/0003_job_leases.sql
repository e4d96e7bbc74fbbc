-- Leases that make a periodic job run on one node at a time.
CREATE TABLE job_leases (
    name        TEXT        PRIMARY KEY,
    holder      TEXT        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
