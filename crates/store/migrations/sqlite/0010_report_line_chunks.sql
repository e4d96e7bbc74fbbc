-- A generated report's lines, as CSV fields in chunks of length-prefixed records, staged under
-- a batch number while the report is built; the report row names the batch and the order of
-- its chunks once it is written. Reports written before keep their JSON `lines`.
CREATE TABLE report_line_chunks (
    report_id  INTEGER NOT NULL REFERENCES report_ids(id),
    batch      INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    body       BLOB    NOT NULL,
    PRIMARY KEY (report_id, batch, seq)
);
ALTER TABLE reports ADD COLUMN line_batch INTEGER;
ALTER TABLE reports ADD COLUMN line_chunks TEXT;

-- The month's maxima are read a page of servers at a time, in key order, from this index alone
-- (the counts are in it, so no table row is visited).
CREATE INDEX usage_samples_maxima ON usage_samples(server_uid, organization_uid, workload_type,
    platform, sampled_at, used_count, new_count, rental_count);
