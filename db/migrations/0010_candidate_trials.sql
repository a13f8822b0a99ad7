-- Every candidate rule set tried against the stored history, with its rule files. A
-- candidate is uploaded code that the replay runs over people's stored checks, showing
-- counts for whatever its scripts ask, so what was asked is kept for review beside the
-- access log's `try_candidate` entry. The files are stored with the first trial of their
-- content hash; later trials of the same content refer to it by the hash.
CREATE TABLE candidate_trials (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    sources_json TEXT              -- [{"name": ..., "text": ...}], manifest first; NULL when an earlier trial holds them
) STRICT;
CREATE INDEX candidate_trials_by_hash ON candidate_trials (content_hash);
