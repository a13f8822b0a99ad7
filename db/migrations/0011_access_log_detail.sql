-- What an audit or a replay was asked for: its period, the period it was compared with,
-- whether test checks were read, and the threshold. Small-cell suppression protects one
-- report; two reports of overlapping periods, or of one period before and after a change
-- in the data, can be subtracted from each other, so who asked for which periods is kept
-- for review. NULL for every other entry.
ALTER TABLE access_log ADD COLUMN detail TEXT;
