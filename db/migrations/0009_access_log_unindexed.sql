-- The access log is written on every check and every read of a stored check, and read
-- only for an occasional extract of one case's entries. Its index by case took each of
-- those writes at a random place (a pseudonym), one more page for the write-ahead log per
-- write; an extract now scans the table instead (tens of milliseconds per million rows).
DROP INDEX IF EXISTS access_log_by_case;
