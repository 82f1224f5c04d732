-- The desk's list: one index per order it offers, each ending in id so that
-- a row-value keyset `(a, b, id) < (?, ?, ?)` walks the index from the
-- cursor, at any depth, without a sort.
--
-- "Needs you" is a virtual column (computed when read, never written by the
-- recording code): 1 for an open failure whose user sent the form. Its index
-- leads with it, then count and recency, the default order.
ALTER TABLE failures ADD COLUMN needs_you INTEGER
    GENERATED ALWAYS AS (status = 'open' AND report_json IS NOT NULL) VIRTUAL;

CREATE INDEX failures_list_needs_you ON failures(needs_you, count, last_seen, id);
CREATE INDEX failures_list_last_seen ON failures(last_seen, id);
CREATE INDEX failures_list_first_seen ON failures(first_seen, id);
CREATE INDEX failures_list_count ON failures(count, last_seen, id);
-- Failures without a school sort with the empty code (a NULL would drop out
-- of a row-value comparison).
CREATE INDEX failures_list_school ON failures(IFNULL(school_code, ''), last_seen, id);
-- A school admin's list: the scope's `school_code IN (…)` leads, so one
-- school's rows are read in order without walking every other school's.
CREATE INDEX failures_list_school_needs_you
    ON failures(school_code, needs_you, count, last_seen, id);
CREATE INDEX failures_list_school_last_seen ON failures(school_code, last_seen, id);
CREATE INDEX failures_list_school_first_seen ON failures(school_code, first_seen, id);
CREATE INDEX failures_list_school_count ON failures(school_code, count, last_seen, id);
-- The desk's menu opens the list on `status = 'open'`: the same orders with
-- the status first (by last seen, `failures_by_status` already is one).
CREATE INDEX failures_list_status_needs_you ON failures(status, needs_you, count, last_seen, id);
CREATE INDEX failures_list_status_first_seen ON failures(status, first_seen, id);
CREATE INDEX failures_list_status_count ON failures(status, count, last_seen, id);
CREATE INDEX failures_list_status_school
    ON failures(status, IFNULL(school_code, ''), last_seen, id);
