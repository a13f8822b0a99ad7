-- An officer's answer to a flag: handled, or not relevant with a reason code from the
-- manifest of the rule set that made the check. No free text (it would collect personal
-- data). Rows are only appended: the newest row per (evaluation, rule) is the current
-- answer, older rows are its history.
CREATE TABLE flag_responses (
    id            INTEGER PRIMARY KEY,
    evaluation_id INTEGER NOT NULL,
    rule_id       TEXT NOT NULL,
    response      TEXT NOT NULL CHECK (response IN ('handled', 'not_relevant')),
    -- A reason code for 'not_relevant'; none for 'handled'.
    reason        TEXT CHECK ((response = 'not_relevant') = (reason IS NOT NULL)),
    answered_at   TEXT NOT NULL,         -- RFC 3339, UTC
    answered_by   TEXT NOT NULL,         -- token name
    -- Only a flag that was raised can be answered; purging the check removes its answers.
    FOREIGN KEY (evaluation_id, rule_id) REFERENCES flags (evaluation_id, rule_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX flag_responses_by_flag ON flag_responses (evaluation_id, rule_id, id);
