-- Import jobs of the admin pages, durable so that a restart never hides
-- whether an import landed. The upload itself is a file in the jobs folder
-- beside the database (deleted when the job ends or expires), never a BLOB:
-- the server streams it to disk and reads it back once per run.
CREATE TABLE import_jobs (
    id                TEXT PRIMARY KEY NOT NULL,
    admin_id          INTEGER NOT NULL,
    actor             TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('schools','accounts','mappings')),
    file_name         TEXT NOT NULL,
    size_bytes        INTEGER NOT NULL,
    replace_school    TEXT,
    status            TEXT NOT NULL CHECK (status IN ('queued','previewed','applying','done','failed','expired')),
    rows_read         INTEGER NOT NULL DEFAULT 0,
    created_count     INTEGER NOT NULL DEFAULT 0,
    updated_count     INTEGER NOT NULL DEFAULT 0,
    unchanged_count   INTEGER NOT NULL DEFAULT 0,
    deactivated_count INTEGER NOT NULL DEFAULT 0,
    resolved_count    INTEGER NOT NULL DEFAULT 0,
    ignored_columns   TEXT NOT NULL DEFAULT '',
    -- The first errors only (capped count, capped text), as JSON.
    errors_json       TEXT NOT NULL DEFAULT '[]',
    more_errors       INTEGER NOT NULL DEFAULT 0,
    -- Why a job failed: 'interrupted', 'database', 'expired'.
    failure           TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX import_jobs_status ON import_jobs(status, admin_id);
