-- One row the service rewrites to find out whether the database takes writes again
-- (after a full disk or a read-only file), so readiness can recover by itself.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
) STRICT;
INSERT INTO write_probe (id, at) VALUES (1, '');
