-- API tokens (SPEC §6): stored as SHA-256, scoped like admins.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('superadmin','school_admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE TABLE api_token_schools (
    token_id     INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    school_code  TEXT NOT NULL,
    PRIMARY KEY (token_id, school_code)
);
