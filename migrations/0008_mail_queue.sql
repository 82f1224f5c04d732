-- E-mails telling users their failure was resolved: queued in the same
-- transaction as the resolution, sent by a background task with retries,
-- so a down mail server loses nothing and never blocks the desk.
CREATE TABLE mail_queue (
    id              INTEGER PRIMARY KEY,
    failure_id      INTEGER NOT NULL REFERENCES failures(id) ON DELETE CASCADE,
    to_address      TEXT NOT NULL,
    lang            TEXT NOT NULL,
    first_name      TEXT,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         TEXT,
    last_error      TEXT
);
CREATE INDEX mail_queue_due ON mail_queue(next_attempt_at) WHERE sent_at IS NULL;
-- The language the user read the failure page in, for that e-mail.
ALTER TABLE failures ADD COLUMN report_lang TEXT;
