-- The totals above the desk's list ("Failures found: n", and the hidden
-- unverified attempts) without counting a million rows: every failure
-- counted by what the list filters on, kept by triggers in the same
-- transaction as the change (as the dashboard's counters of 0011). A
-- missing school or IdP counts under '' (no school admin's scope holds it).
CREATE TABLE failure_counts (
    status         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    school_code    TEXT NOT NULL,
    idp_entity_id  TEXT NOT NULL,
    verified       INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    -- of which the user sent the failure form
    reported       INTEGER NOT NULL,
    PRIMARY KEY (status, kind, school_code, idp_entity_id, verified)
) WITHOUT ROWID;
INSERT INTO failure_counts (status, kind, school_code, idp_entity_id, verified, n, reported)
    SELECT status, kind, COALESCE(school_code, ''), COALESCE(idp_entity_id, ''),
           asserted_verified != 0, COUNT(*), COUNT(report_json)
    FROM failures GROUP BY 1, 2, 3, 4, 5;

CREATE TRIGGER failure_counts_all_insert AFTER INSERT ON failures
BEGIN
    INSERT INTO failure_counts (status, kind, school_code, idp_entity_id, verified, n, reported)
        VALUES (NEW.status, NEW.kind, COALESCE(NEW.school_code, ''), COALESCE(NEW.idp_entity_id, ''),
                NEW.asserted_verified != 0, 1, NEW.report_json IS NOT NULL)
        ON CONFLICT (status, kind, school_code, idp_entity_id, verified)
        DO UPDATE SET n = n + 1, reported = reported + excluded.reported;
END;

CREATE TRIGGER failure_counts_all_update
AFTER UPDATE OF status, kind, school_code, idp_entity_id, asserted_verified, report_json ON failures
BEGIN
    UPDATE failure_counts SET n = n - 1, reported = reported - (OLD.report_json IS NOT NULL)
        WHERE status = OLD.status AND kind = OLD.kind AND school_code = COALESCE(OLD.school_code, '')
          AND idp_entity_id = COALESCE(OLD.idp_entity_id, '') AND verified = (OLD.asserted_verified != 0);
    INSERT INTO failure_counts (status, kind, school_code, idp_entity_id, verified, n, reported)
        VALUES (NEW.status, NEW.kind, COALESCE(NEW.school_code, ''), COALESCE(NEW.idp_entity_id, ''),
                NEW.asserted_verified != 0, 1, NEW.report_json IS NOT NULL)
        ON CONFLICT (status, kind, school_code, idp_entity_id, verified)
        DO UPDATE SET n = n + 1, reported = reported + excluded.reported;
END;

CREATE TRIGGER failure_counts_all_delete AFTER DELETE ON failures
BEGIN
    UPDATE failure_counts SET n = n - 1, reported = reported - (OLD.report_json IS NOT NULL)
        WHERE status = OLD.status AND kind = OLD.kind AND school_code = COALESCE(OLD.school_code, '')
          AND idp_entity_id = COALESCE(OLD.idp_entity_id, '') AND verified = (OLD.asserted_verified != 0);
END;
