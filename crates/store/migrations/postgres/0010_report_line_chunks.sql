-- A generated report's lines, as CSV fields in chunks of length-prefixed records, staged under
-- a batch number while the report is built; the report row names the batch and the order of
-- its chunks once it is written. Reports written before keep their JSON `lines`.
CREATE TABLE report_line_chunks (
    report_id  BIGINT NOT NULL REFERENCES report_ids(id),
    batch      BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    body       BYTEA  NOT NULL,
    PRIMARY KEY (report_id, batch, seq)
);
ALTER TABLE reports ADD COLUMN line_batch BIGINT;
ALTER TABLE reports ADD COLUMN line_chunks TEXT;
