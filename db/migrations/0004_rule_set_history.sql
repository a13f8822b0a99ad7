-- The rule-set history (GET /api/v1/rules/history) counts each rule set's checks and
-- finds its first and last use; this index answers that without reading the checks.
CREATE INDEX evaluations_by_rule_set ON evaluations (rule_set_hash, created_at);
