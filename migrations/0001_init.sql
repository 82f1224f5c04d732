-- Schools, accounts, identity mappings, failures, replay cache, pending
-- requests, sessions, admins and the audit log.
-- Timestamps are RFC 3339 UTC text (sortable); expiries are Unix seconds.

CREATE TABLE schools (
    code        TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE accounts (
    account_id    TEXT PRIMARY KEY NOT NULL,
    school_code   TEXT NOT NULL REFERENCES schools(code),
    last_name     TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    birth_date    TEXT,
    role          TEXT NOT NULL CHECK (role IN ('student','parent','teacher','staff')),
    class_name    TEXT,
    email         TEXT,
    folded_last   TEXT NOT NULL,
    folded_first  TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0,1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX accounts_identity ON accounts(school_code, folded_last, folded_first, birth_date);
CREATE INDEX accounts_school ON accounts(school_code, last_name, first_name);

CREATE TABLE mappings (
    id             INTEGER PRIMARY KEY,
    idp_entity_id  TEXT NOT NULL,
    subject        TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(account_id),
    source         TEXT NOT NULL CHECK (source IN ('attribute','auto','admin','import')),
    created_at     TEXT NOT NULL,
    created_by     TEXT,
    UNIQUE (idp_entity_id, subject)
);
CREATE INDEX mappings_account ON mappings(account_id);

CREATE TABLE failures (
    id                   INTEGER PRIMARY KEY,
    reference            TEXT NOT NULL UNIQUE,
    support_code         TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','resolved','dismissed')),
    idp_entity_id        TEXT,
    school_code          TEXT,
    subject              TEXT,
    detail               TEXT NOT NULL,
    asserted_json        TEXT NOT NULL DEFAULT '{}',
    asserted_verified    INTEGER NOT NULL DEFAULT 0,
    asserted_last_name   TEXT,
    asserted_first_name  TEXT,
    asserted_birth_date  TEXT,
    asserted_role        TEXT,
    asserted_class_name  TEXT,
    candidate_ids        TEXT,
    raw_response         TEXT,
    client_ip            TEXT,
    user_agent           TEXT,
    relay_state          TEXT,
    first_seen           TEXT NOT NULL,
    last_seen            TEXT NOT NULL,
    count                INTEGER NOT NULL DEFAULT 1,
    report_json          TEXT,
    reported_at          TEXT,
    resolved_account_id  TEXT,
    resolved_by          TEXT,
    resolved_at          TEXT,
    resolution_source    TEXT,
    dismiss_reason       TEXT
);
-- One open failure per (IdP, subject, kind): repeats fold into it.
CREATE UNIQUE INDEX failures_open_fold ON failures(idp_entity_id, subject, kind)
    WHERE status = 'open' AND idp_entity_id IS NOT NULL AND subject IS NOT NULL;
CREATE INDEX failures_by_status ON failures(status, last_seen, id);
CREATE INDEX failures_by_school ON failures(school_code, status, last_seen, id);
CREATE INDEX failures_by_kind ON failures(kind, status, last_seen, id);
CREATE INDEX failures_by_idp ON failures(idp_entity_id, status, last_seen, id);

-- Accepted assertion IDs, kept until the assertion could no longer be used.
CREATE TABLE seen_assertions (
    idp_entity_id  TEXT NOT NULL,
    assertion_id   TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    PRIMARY KEY (idp_entity_id, assertion_id)
);
CREATE INDEX seen_assertions_expiry ON seen_assertions(expires_at);

-- AuthnRequests we sent and have not seen answered.
CREATE TABLE pending_requests (
    id             TEXT PRIMARY KEY NOT NULL,
    idp_entity_id  TEXT NOT NULL,
    relay_state    TEXT,
    expires_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('user','admin')),
    principal   TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE admins (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('superadmin','school_admin')),
    created_at     TEXT NOT NULL
);
CREATE TABLE admin_schools (
    admin_id     INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    school_code  TEXT NOT NULL,
    PRIMARY KEY (admin_id, school_code)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT,
    school_code  TEXT,
    before_json  TEXT,
    after_json   TEXT
);
CREATE INDEX audit_log_at ON audit_log(at, id);
