-- A report's flat lines (the CSV rows) live beside the report document, so reading reports
-- never loads them; only the CSV export does.
ALTER TABLE reports ADD COLUMN lines TEXT;
