-- The browser that started an SP-initiated login: the SHA-256 of the token
-- in its login cookie (NULL when the binding is off, over plain http), and
-- the client address, so one address cannot fill the table.
ALTER TABLE pending_requests ADD COLUMN browser_hash TEXT;
ALTER TABLE pending_requests ADD COLUMN client_ip TEXT;
CREATE INDEX pending_requests_by_ip ON pending_requests(client_ip, expires_at);
