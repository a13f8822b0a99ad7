-- A check made with a token whose purpose is 'test' is stored like any other, but marked,
-- so the audit can leave it out (and count how many it left out).
ALTER TABLE evaluations ADD COLUMN test INTEGER NOT NULL DEFAULT 0 CHECK (test IN (0, 1));
-- Test checks are few: this index finds them (or that there are none) without a scan.
CREATE INDEX evaluations_test ON evaluations (id) WHERE test = 1;
