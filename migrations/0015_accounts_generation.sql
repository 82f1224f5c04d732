-- A counter every change to accounts moves (one trigger per statement kind),
-- so that a large import, which builds the next accounts table in short
-- transactions beside the live one, can tell at its swap that nothing else
-- changed accounts meanwhile (another process's import, the start-up
-- refold). See store::imports::swap.
CREATE TABLE generations (
    name TEXT PRIMARY KEY NOT NULL,
    n    INTEGER NOT NULL
);
INSERT INTO generations (name, n) VALUES ('accounts', 0);
CREATE TRIGGER accounts_generation_insert AFTER INSERT ON accounts
BEGIN UPDATE generations SET n = n + 1 WHERE name = 'accounts'; END;
CREATE TRIGGER accounts_generation_update AFTER UPDATE ON accounts
BEGIN UPDATE generations SET n = n + 1 WHERE name = 'accounts'; END;
CREATE TRIGGER accounts_generation_delete AFTER DELETE ON accounts
BEGIN UPDATE generations SET n = n + 1 WHERE name = 'accounts'; END;
