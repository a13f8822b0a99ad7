-- Initial schema. Case references are stored only as pseudonyms (HMAC-SHA-256).

-- Every rule set that produced an evaluation, with its full text, so any stored flag
-- can be traced to the exact rules.
CREATE TABLE rule_sets (
    content_hash  TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    sources_json  TEXT NOT NULL,          -- [{"name": ..., "text": ...}], manifest first
    first_seen_at TEXT NOT NULL
) STRICT;

CREATE TABLE evaluations (
    id             INTEGER PRIMARY KEY,
    case_pseudonym TEXT NOT NULL,
    stage          TEXT NOT NULL CHECK (stage IN ('before_gk', 'gk_closing')),
    checked_on     TEXT NOT NULL,         -- YYYY-MM-DD
    created_at     TEXT NOT NULL,         -- RFC 3339, UTC
    rule_set_hash  TEXT NOT NULL REFERENCES rule_sets (content_hash),
    requested_by   TEXT NOT NULL,         -- token name
    profile_json   TEXT NOT NULL          -- the profile, case_id replaced by the pseudonym
) STRICT;
CREATE INDEX evaluations_by_case ON evaluations (case_pseudonym, checked_on);
CREATE INDEX evaluations_by_created ON evaluations (created_at);

CREATE TABLE flags (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    rule_id       TEXT NOT NULL,
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message       TEXT NOT NULL,
    PRIMARY KEY (evaluation_id, rule_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX flags_by_rule ON flags (rule_id);

CREATE TABLE rule_errors (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    rule_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL,
    line          INTEGER,
    col           INTEGER,
    PRIMARY KEY (evaluation_id, rule_id)
) STRICT, WITHOUT ROWID;

-- One outcome per case; a correction replaces it and the old row goes to the history.
CREATE TABLE outcomes (
    case_pseudonym TEXT PRIMARY KEY,
    ended_on       TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('left_insurance', 'returned_to_fk')),
    reasons_json   TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    recorded_by    TEXT NOT NULL
) STRICT;

CREATE TABLE outcome_history (
    id             INTEGER PRIMARY KEY,
    case_pseudonym TEXT NOT NULL,
    ended_on       TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    reasons_json   TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    replaced_at    TEXT NOT NULL,
    replaced_by    TEXT NOT NULL
) STRICT;

-- Who read or wrote which case, and when.
CREATE TABLE access_log (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    case_pseudonym TEXT,
    evaluation_id  INTEGER
) STRICT;
CREATE INDEX access_log_by_case ON access_log (case_pseudonym);
