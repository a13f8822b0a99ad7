-- Shadow rules: a second rule set evaluated on every stored check. Its results are kept
-- apart from the live flags (never in `flags`), so no officer and no check API sees them;
-- the audit's `shadow` section compares them with the live flags.
CREATE TABLE shadow_results (
    evaluation_id INTEGER PRIMARY KEY REFERENCES evaluations (id) ON DELETE CASCADE,
    rule_set_hash TEXT NOT NULL REFERENCES rule_sets (content_hash),
    flagged       TEXT NOT NULL,          -- ids of the rules that flagged, space-separated
    failed        TEXT NOT NULL           -- ids of the rules that failed, space-separated
) STRICT;
