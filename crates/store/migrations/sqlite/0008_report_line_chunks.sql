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
