-- The browser that started an SP-initiated login: the SHA-256 of the token
-- in its login cookie (NULL when the binding is off, over plain http).
ALTER TABLE pending_requests ADD COLUMN browser_hash TEXT;
