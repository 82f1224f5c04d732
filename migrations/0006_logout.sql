-- Single logout (SPEC §3, POST /logout and /saml/slo).
-- A user session remembers the IdP session it came from: the NameID exactly
-- as the IdP sent it (value, Format, qualifiers) and the AuthnStatement's
-- SessionIndex, so that our LogoutRequest names the person as the IdP knows
-- them, and an IdP's LogoutRequest finds every session of that person.
-- NULL for admin sessions and for logins without a NameID.
ALTER TABLE sessions ADD COLUMN idp_entity_id TEXT;
ALTER TABLE sessions ADD COLUMN name_id TEXT;
ALTER TABLE sessions ADD COLUMN name_id_format TEXT;
ALTER TABLE sessions ADD COLUMN name_qualifier TEXT;
ALTER TABLE sessions ADD COLUMN sp_name_qualifier TEXT;
ALTER TABLE sessions ADD COLUMN session_index TEXT;
CREATE INDEX sessions_by_idp_subject ON sessions(idp_entity_id, name_id);

-- LogoutRequests we sent and whose LogoutResponse we have not seen. Kept
-- apart from pending_requests (AuthnRequests): an answer to one kind of
-- request must never be taken as the answer to the other.
CREATE TABLE pending_logouts (
    id             TEXT PRIMARY KEY NOT NULL,
    idp_entity_id  TEXT NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX pending_logouts_expiry ON pending_logouts(expires_at);
