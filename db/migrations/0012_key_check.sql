-- A check value of the pseudonym key this database's pseudonyms are made with: the key's
-- HMAC-SHA256 of a fixed text no case id can be, which tells nothing of the key. A
-- command started with another key, or with a new key where the old one was not found,
-- is refused: its pseudonyms would never meet the stored ones.
CREATE TABLE key_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    hmac TEXT NOT NULL
) STRICT;
