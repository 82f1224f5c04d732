-- The desk at scale (1,000,000 failures, 25,000 accounts per school).

-- A failure's history: every failure of one identity, newest first,
-- without scanning every failure of the IdP.
CREATE INDEX failures_by_identity ON failures(idp_entity_id, subject, last_seen, id);

-- The oldest open failure, overall and per school (the dashboard). Only
-- open rows are indexed; status leads all the same so that the planner sees
-- the order it needs beside failures_by_status (status, last_seen, id).
CREATE INDEX failures_open_first_seen ON failures(status, first_seen, id)
    WHERE status = 'open';
CREATE INDEX failures_open_school_first_seen ON failures(status, school_code, first_seen, id)
    WHERE status = 'open';

-- Candidate prefilter: accounts of a school by birth date; the folded names
-- (same, swapped, prefixes) are served by accounts_identity (school_code,
-- folded_last, folded_first, birth_date).
CREATE INDEX accounts_birth_date ON accounts(school_code, birth_date);

-- Which version of the name folding the stored folded_last/folded_first were
-- made with: when the folding changes, the service refolds every account at
-- start (store::accounts::refold_if_stale) and records the new version.
CREATE TABLE name_fold (version INTEGER NOT NULL);
INSERT INTO name_fold (version) VALUES (1);

-- The dashboard's counters, kept by triggers in the same transaction as the
-- change, so the numbers cost a few rows to read at any size and can never
-- be half-written. A failure without a school counts under '' (outside
-- every school admin's scope, like the failure itself).
--
-- Open failures by kind and school, and how many of them carry a sent form.
CREATE TABLE failure_open_counts (
    kind         TEXT NOT NULL,
    school_code  TEXT NOT NULL,
    n            INTEGER NOT NULL,
    reported     INTEGER NOT NULL,
    PRIMARY KEY (kind, school_code)
) WITHOUT ROWID;
INSERT INTO failure_open_counts (kind, school_code, n, reported)
    SELECT kind, COALESCE(school_code, ''), COUNT(*), COUNT(report_json)
    FROM failures WHERE status = 'open' GROUP BY 1, 2;

-- Failures first seen per UTC day, by kind and school (every status).
CREATE TABLE failure_days (
    day          TEXT NOT NULL,
    kind         TEXT NOT NULL,
    school_code  TEXT NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (day, kind, school_code)
) WITHOUT ROWID;
INSERT INTO failure_days (day, kind, school_code, n)
    SELECT substr(first_seen, 1, 10), kind, COALESCE(school_code, ''), COUNT(*)
    FROM failures GROUP BY 1, 2, 3;

CREATE TRIGGER failure_counts_insert AFTER INSERT ON failures
BEGIN
    INSERT INTO failure_open_counts (kind, school_code, n, reported)
        SELECT NEW.kind, COALESCE(NEW.school_code, ''), 1, NEW.report_json IS NOT NULL
        WHERE NEW.status = 'open'
        ON CONFLICT (kind, school_code) DO UPDATE SET n = n + 1, reported = reported + excluded.reported;
    INSERT INTO failure_days (day, kind, school_code, n)
        SELECT substr(NEW.first_seen, 1, 10), NEW.kind, COALESCE(NEW.school_code, ''), 1
        WHERE true
        ON CONFLICT (day, kind, school_code) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER failure_counts_delete AFTER DELETE ON failures
BEGIN
    UPDATE failure_open_counts SET n = n - 1, reported = reported - (OLD.report_json IS NOT NULL)
        WHERE OLD.status = 'open' AND kind = OLD.kind AND school_code = COALESCE(OLD.school_code, '');
    UPDATE failure_days SET n = n - 1
        WHERE day = substr(OLD.first_seen, 1, 10) AND kind = OLD.kind
          AND school_code = COALESCE(OLD.school_code, '');
END;

-- A fold (count, last_seen) changes none of these columns: no work on the
-- hot path of a repeated failure.
CREATE TRIGGER failure_counts_update_open
AFTER UPDATE OF status, kind, school_code, report_json ON failures
BEGIN
    UPDATE failure_open_counts SET n = n - 1, reported = reported - (OLD.report_json IS NOT NULL)
        WHERE OLD.status = 'open' AND kind = OLD.kind AND school_code = COALESCE(OLD.school_code, '');
    INSERT INTO failure_open_counts (kind, school_code, n, reported)
        SELECT NEW.kind, COALESCE(NEW.school_code, ''), 1, NEW.report_json IS NOT NULL
        WHERE NEW.status = 'open'
        ON CONFLICT (kind, school_code) DO UPDATE SET n = n + 1, reported = reported + excluded.reported;
END;

CREATE TRIGGER failure_counts_update_day
AFTER UPDATE OF first_seen, kind, school_code ON failures
BEGIN
    UPDATE failure_days SET n = n - 1
        WHERE day = substr(OLD.first_seen, 1, 10) AND kind = OLD.kind
          AND school_code = COALESCE(OLD.school_code, '');
    INSERT INTO failure_days (day, kind, school_code, n)
        SELECT substr(NEW.first_seen, 1, 10), NEW.kind, COALESCE(NEW.school_code, ''), 1
        WHERE true
        ON CONFLICT (day, kind, school_code) DO UPDATE SET n = n + 1;
END;
