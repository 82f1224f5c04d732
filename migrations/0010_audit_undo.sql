-- An undo names the audit entry it undoes; an entry is undone at most once
-- (the unique index settles two admins undoing it at the same moment).
ALTER TABLE audit_log ADD COLUMN undoes INTEGER REFERENCES audit_log(id);
CREATE UNIQUE INDEX audit_log_undoes ON audit_log(undoes) WHERE undoes IS NOT NULL;
-- A target's entries (a failure's history; whether it was acted on since
-- an entry, which an undo asks) without reading the whole log.
CREATE INDEX audit_log_target ON audit_log(target, id);
