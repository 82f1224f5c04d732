-- An undo names the audit entry it undoes; an entry is undone at most once
-- (the unique index settles two admins undoing it at the same moment).
ALTER TABLE audit_log ADD COLUMN undoes INTEGER REFERENCES audit_log(id);
CREATE UNIQUE INDEX audit_log_undoes ON audit_log(undoes) WHERE undoes IS NOT NULL;
