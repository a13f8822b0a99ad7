-- What the audit and the audit of answers read of each stored check beyond the cheap
-- columns of `evaluations`, so that neither reads the stored profiles (nor the flags'
-- messages). One row per check whose stored profile reads back as a profile; a check
-- without a row is one the audit counts as unreadable. Written in the same transaction
-- as its check, from the profile already parsed; deleted with it. The rows of checks
-- stored before this migration are filled in by the migration itself (it parses every
-- stored profile once).
--
-- Closed sets are stored by their profile names (`female`, `psychiatric`, ...), so a
-- row reads like the profile it came from; NULL where the profile gives nothing.
CREATE TABLE check_facts (
    evaluation_id    INTEGER PRIMARY KEY REFERENCES evaluations (id) ON DELETE CASCADE,
    first_meeting_on TEXT,                 -- gk.first_meeting_on, YYYY-MM-DD
    sex              TEXT,                 -- person.sex
    age              INTEGER,              -- person.age, years
    diagnosis_group  TEXT,                 -- group of main_diagnosis (psychiatric, musculoskeletal, injury, other)
    education        TEXT,                 -- person.education
    marital_status   TEXT,                 -- person.marital_status
    children_0_17    INTEGER CHECK (children_0_17 IN (0, 1)),
    born_abroad      INTEGER CHECK (born_abroad IN (0, 1)),
    returner_ever    INTEGER CHECK (returner_ever IN (0, 1)),
    sgi              INTEGER,              -- person.sgi, SEK per year
    flagged          TEXT NOT NULL,        -- ids of the rules that flagged, sorted, space-separated
    failed           TEXT NOT NULL         -- ids of the rules that failed, sorted, space-separated
) STRICT;
-- The audit's scan reads the checks' cheap columns from this index (a few tens of MB)
-- instead of stepping through the table with the stored profiles; `id` first, so it
-- reads in storage order, alongside `check_facts`.
CREATE INDEX evaluations_scan
    ON evaluations (id, case_pseudonym, checked_on, test, stage, rule_set_hash, requested_by);
